"""mpalloc flash, micro:bit v1 path: the .hex with the embedded start-up script,
booted exactly as built in QEMU (qemu:microbit), identity read back from the board."""
import os
import shutil
import struct
from pathlib import Path

import pytest

from mpalloc_host.flash import FlashError, firmware_version, identity, microbit_hex
from mpalloc_host.flash.run import build_microbit_hex, flash_file, open_link
from mpalloc_host import profiles

FW = Path(os.environ.get("MPALLOC_MICROBIT_FIRMWARE", "/usr/share/firmware-microbit-micropython/firmware.hex"))


def need(what, ok):
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail("%s is missing (required in CI)" % what)
        pytest.skip("%s is missing" % what)


@pytest.fixture
def firmware():
    need("micro:bit firmware %s" % FW, FW.is_file())
    return FW


@pytest.fixture
def qemu(firmware):
    need("qemu-system-arm", shutil.which("qemu-system-arm") or os.environ.get("MPALLOC_QEMU"))


def test_script_block_format():
    block = microbit_hex.script_block(b"print(1)\r\n")
    assert block[:2] == b"MP"
    assert struct.unpack("<H", block[2:4])[0] == len(b"print(1)\n")
    assert block[4:13] == b"print(1)\n"
    assert len(block) % 16 == 0 and set(block[13:]) == {0}
    with pytest.raises(FlashError, match="at most 8188"):
        microbit_hex.script_block(b"#" * 8189)


def test_built_hex_carries_the_script(firmware, tmp_path):
    profile = profiles.load("microbit")
    ih, script = build_microbit_hex(profile, firmware)
    out = tmp_path / "mpalloc.hex"
    microbit_hex.write_hex(ih, out)
    back = microbit_hex.read_hex(out)
    assert microbit_hex.extract_script(back) == script
    assert microbit_hex.script_version(script) == firmware_version()
    assert b"MANAGED_BYTES = %d" % profile["managed"]["bytes"] in script
    # The firmware itself is untouched, and re-embedding replaces the script.
    orig = microbit_hex.read_hex(firmware)
    assert back.tobinstr(start=0, end=0x3B000) == orig.tobinstr(start=0, end=0x3B000)
    again = microbit_hex.embed_script(back, b"x = 1\n")
    assert microbit_hex.extract_script(again) == b"x = 1\n"
    assert again[microbit_hex.SCRIPT_ADDR + 16] == again.padding  # the old, longer script is gone


def test_refuses_images_for_other_chips(firmware, tmp_path):
    ih = microbit_hex.read_hex(firmware)
    ih[0x7FFF0] = 0  # 512 KiB of flash: an nRF52833 (micro:bit v2) image
    big = tmp_path / "v2.hex"
    microbit_hex.write_hex(ih, big)
    with pytest.raises(FlashError, match="another chip"):
        flash_file("qemu:microbit", "microbit", big)
    uf2 = tmp_path / "fw.uf2"
    uf2.write_bytes(b"UF2\n" + bytes(508))
    with pytest.raises(FlashError, match="not an Intel HEX"):
        flash_file("qemu:microbit", "microbit", uf2)


def test_flash_boots_that_hex_in_qemu(qemu, firmware, tmp_path):
    out = tmp_path / "mpalloc.hex"
    said = []
    r = flash_file("qemu:microbit", "microbit", firmware, out=str(out), say=said.append)
    assert r.action == "flashed"
    # The start-up script ran in that boot: it left mpalloc_boot in the REPL.
    ran = [n for n in r.notes if n.startswith("start-up script ran")]
    assert ran and ("'%s', 2048," % firmware_version()) in ran[0]
    ident = r.identity
    assert ident.platform == "microbit" and ident.version[:2] == (1, 9)
    assert "nRF51822" in ident.machine
    # mpalloc's version came from the board's flash at 0x3E000, i.e. from that image.
    assert ident.mpalloc == firmware_version() and ident.mpalloc_from == "start-up script"
    assert ident.build() == identity.build_line(microbit_hex.read_hex(firmware).tobinstr(start=0, end=0x3FFFF))
    assert microbit_hex.extract_script(microbit_hex.read_hex(out)) is not None


def test_identity_comes_from_the_booted_image(qemu, firmware, tmp_path):
    """A .hex whose script says another version boots and is caught by verification."""
    ih = microbit_hex.read_hex(firmware)
    script = microbit_hex.startup_script("9.9.9-other", 1024)
    other = tmp_path / "other.hex"
    microbit_hex.write_hex(microbit_hex.embed_script(ih, script), other)
    link = open_link("qemu:microbit", "microbit", firmware=str(other))
    try:
        ident = link.identity(soft_reset=True)  # survives a soft reset: read from flash
    finally:
        link.close()
    assert ident.mpalloc == "9.9.9-other"
    exp = identity.expected(profiles.load("microbit"), b"", firmware_version())
    assert identity.compare(ident, exp) == ["mpalloc is 9.9.9-other, expected %s" % firmware_version()]
