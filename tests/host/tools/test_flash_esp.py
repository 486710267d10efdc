"""mpalloc flash, ESP32 path: image header check, and the esptool command line
checked by esptool's own click parser (and esptool itself run against a missing port)."""
import struct
import warnings

import pytest
from esptool import cli

from mpalloc_host import profiles
from mpalloc_host.flash import FlashError, esp
from mpalloc_host.flash.run import flash_file


def esp_image(chip_id=0, segments=3):
    hdr = struct.pack("<BBBBI", 0xE9, segments, 2, 0x20, 0x40080000)
    ext = struct.pack("<B3sH", 0xEE, b"\0\0\0", chip_id) + bytes(12)
    return hdr + ext + bytes(1000) + b"MicroPython v1.29.0 on 2026-07-01; Generic ESP32 module with ESP32\0"


def parse_with_esptool(args):
    """esptool's own parser: the group's options, then the subcommand's."""
    cli._esp = None  # what EsptoolGroup.__call__ sets before parsing
    ctx = cli.make_context("esptool", list(args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rest = list(ctx.protected_args) + list(ctx.args)
    name, cmd, sub_args = cli.resolve_command(ctx, rest)
    sub = cmd.make_context(name, sub_args, parent=ctx)
    return ctx.params, name, sub.params


@pytest.mark.parametrize("erase", [False, True])
def test_esptool_accepts_our_command_line(tmp_path, erase):
    fw = tmp_path / "ESP32_GENERIC.bin"
    fw.write_bytes(esp_image())
    flash = profiles.load("esp32")["flash"]
    top, name, sub = parse_with_esptool(esp.esptool_args("/dev/ttyUSB0", flash, fw, erase=erase))
    assert top["chip"] == "esp32" and top["port"] == "/dev/ttyUSB0" and top["baud"] == 460800
    assert top["before"] == "default-reset" and top["after"] == "hard-reset"
    assert name == "write-flash"
    assert sub["erase_all"] is erase
    (addr, f), = sub["addr_filename"]
    assert addr == 0x1000 == int(flash["offset"], 16)
    assert f.name == str(fw)
    f.close()


def test_image_header_checked():
    assert esp.check_image(esp_image(0), "esp32") == "ESP32"
    with pytest.raises(FlashError, match="built for ESP32-S3 .*wrong firmware"):
        esp.check_image(esp_image(9), "esp32")
    with pytest.raises(FlashError, match="a UF2 file"):
        esp.check_image(b"UF2\n" + bytes(100), "esp32")
    with pytest.raises(FlashError, match="ELF"):
        esp.check_image(b"\x7fELF" + bytes(100), "esp32")
    with pytest.raises(FlashError, match="0 segments"):
        esp.check_image(esp_image(0, segments=0), "esp32")


def test_wrong_chip_refused_before_esptool(tmp_path):
    fw = tmp_path / "s3.bin"
    fw.write_bytes(esp_image(9))
    with pytest.raises(FlashError, match="ESP32-S3"):
        flash_file("/dev/mpalloc-no-such-port", "esp32", fw)


def test_esptool_failure_is_an_error(tmp_path):
    """esptool itself runs; a port that is not there is a clear error, not success."""
    fw = tmp_path / "fw.bin"
    fw.write_bytes(esp_image())
    said = []
    with pytest.raises(FlashError, match="esptool failed .*not flashed"):
        flash_file("/dev/mpalloc-no-such-port", "esp32", fw, say=said.append)
    assert any("no MicroPython board answers" in s for s in said)
