"""mpalloc flash, RP2040 path: a directory that looks like the RPI-RP2 drive, a
virtual board on the serial side, the UF2 family check, identity before and after."""
import threading

import pytest
from serial.tools.list_ports_common import ListPortInfo

from mpalloc_host import FIRMWARE_DIR, vboard
from mpalloc_host.flash import FlashError, drives, firmware_version, uf2
from mpalloc_host.flash.run import flash_file, open_link, wait_port_back

RP2040 = 0xE48BFF56
INFO = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


@pytest.fixture(scope="module")
def board():
    """A virtual RP2040 with mpalloc on its filesystem (standing in for a frozen build)."""
    files = {"lib/" + str(f.relative_to(FIRMWARE_DIR)): f.read_bytes()
             for f in sorted((FIRMWARE_DIR / "mpalloc").rglob("*.py"))}
    vb = vboard.start("rp2040", files=files)
    try:
        link = open_link(vb.device, "rp2040")
        try:
            vb.ident = link.identity()
        finally:
            link.close()
        yield vb
    finally:
        vb.close()


def image(build, frozen=True, family=RP2040):
    payload = b"\x00" * 300 + build.encode() + b"\x00" + (b"mpalloc/__init__.py\x00" if frozen else b"") + b"\xff" * 700
    return uf2.make(payload, 0x10000000, family)


class Rom:
    """The boot ROM's side: on machine.bootloader() the RPI-RP2 drive appears."""

    def __init__(self, root):
        self.drive = root / "RPI-RP2"
        self.calls = 0

    def __call__(self, link):
        self.calls += 1
        self.drive.mkdir()
        (self.drive / "INFO_UF2.TXT").write_text(INFO)


def test_uf2_parse_and_family():
    data = uf2.make(bytes(range(256)) * 3, 0x10000000, RP2040)
    img = uf2.parse(data)
    assert (img.family, img.nblocks, img.lo, img.hi) == (RP2040, 3, 0x10000000, 0x10000300)
    assert img.payload == bytes(range(256)) * 3
    uf2.check_family(img, RP2040)
    with pytest.raises(FlashError, match="RP2350_ARM_S .*another chip.*needs RP2040"):
        uf2.check_family(uf2.parse(uf2.make(b"x", 0x10000000, 0xE48BFF59)), RP2040)
    with pytest.raises(FlashError, match="truncated"):
        uf2.parse(data[:1024])
    with pytest.raises(FlashError, match="not a .uf2"):
        uf2.parse(b"\x7fELF" + bytes(508))


def test_drive_found_by_info_uf2(tmp_path):
    d = tmp_path / "somewhere"
    d.mkdir()
    assert drives.find("INFO_UF2.TXT", "RPI-RP2", [str(d)]) is None
    (d / "INFO_UF2.TXT").write_text(INFO.replace("RPI-RP2", "RP2350"))
    assert drives.find("INFO_UF2.TXT", "RPI-RP2", [str(d)]) is None
    (d / "INFO_UF2.TXT").write_text(INFO)
    assert drives.find("INFO_UF2.TXT", "RPI-RP2", [str(d)]) == d
    with pytest.raises(FlashError, match=r"no RPI-RP2 drive .* within 0.3 s: hold BOOTSEL"):
        drives.wait("INFO_UF2.TXT", "RPI-RP2", [str(tmp_path / "nothing")], 0.3, what="RPI-RP2",
                    hint="hold BOOTSEL")
    with pytest.raises(FlashError, match="failed after 0 of 3 bytes"):
        drives.copy(b"abc", d / "INFO_UF2.TXT", "x.uf2")  # a file, not a drive


def test_flash_through_the_drive(board, tmp_path):
    fw = tmp_path / "fw.uf2"
    data = image(board.ident.build())
    fw.write_bytes(data)
    rom = Rom(tmp_path)
    said = []
    r = flash_file(board.device, "rp2040", fw, force=True, drive_roots=[str(rom.drive)], bootloader=rom,
                   virtual=True, say=said.append)
    assert rom.calls == 1
    assert (rom.drive / "firmware.uf2").read_bytes() == data
    assert r.action == "flashed"
    assert r.identity.mpalloc == firmware_version() and r.expected.mpalloc == firmware_version()
    assert any(s.startswith("verified:") for s in said)


def test_skips_when_the_board_already_runs_it(board, tmp_path):
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(image(board.ident.build()))
    rom = Rom(tmp_path)
    said = []
    r = flash_file(board.device, "rp2040", fw, drive_roots=[str(rom.drive)], bootloader=rom, virtual=True,
                   say=said.append)
    assert r.action == "skipped" and rom.calls == 0
    assert any("already runs" in s for s in said)


def test_wrong_family_is_refused_before_anything_happens(board, tmp_path):
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(image(board.ident.build(), family=0xADA52840))
    rom = Rom(tmp_path)
    with pytest.raises(FlashError, match="NRF52840.*for another chip"):
        flash_file(board.device, "rp2040", fw, force=True, drive_roots=[str(rom.drive)], bootloader=rom,
                   virtual=True)
    assert rom.calls == 0 and not rom.drive.exists()


def test_wrong_board_on_the_port(board, tmp_path):
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(image(board.ident.build()))
    rom = Rom(tmp_path)
    with pytest.raises(FlashError, match="wrong board on the port.*expects sys.platform 'rp2'"):
        flash_file(board.device, "rp2040", fw, drive_roots=[str(rom.drive)], bootloader=rom, virtual=False)
    assert rom.calls == 0


def test_board_not_running_the_image_is_an_error(board, tmp_path):
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(image("MicroPython v9.9.9 on 2099-01-01"))
    rom = Rom(tmp_path)
    with pytest.raises(FlashError, match="not what was flashed: firmware is .*expected 'MicroPython v9.9.9"):
        flash_file(board.device, "rp2040", fw, drive_roots=[str(rom.drive)], bootloader=rom, virtual=True)
    assert rom.calls == 1  # it was written, and not reported as success


def test_port_found_again_by_serial_number():
    old = ListPortInfo("/dev/ttyACM0")
    new = ListPortInfo("/dev/ttyACM3")
    new.serial_number = "E660583883265A2F"
    seen = []

    def comports():
        seen.append(1)
        return [old] if len(seen) < 3 else [old, new]

    assert wait_port_back("/dev/ttyACM0", "E660583883265A2F", 5, comports) == "/dev/ttyACM3"
    with pytest.raises(FlashError, match="did not come back within 0.3 s"):
        wait_port_back("/dev/ttyACM0", "NOPE", 0.3, lambda: [old, new])


def test_port_that_disappears(tmp_path):
    vb = vboard.start("rp2040")
    link = open_link(vb.device, "rp2040")
    try:
        threading.Timer(0.05, vb.close).start()
        import time

        time.sleep(0.3)
        with pytest.raises(FlashError, match="could not read the board's identity"):
            link.identity()
    finally:
        link.close()
        vb.close()
