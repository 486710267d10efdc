"""Deployment faults and ROMFS on emu:rp2040 (the RP2040's own MicroPython v1.28.0).

- `mpalloc deploy --romfs` with the RPI_PICO_ROMFS firmware: the runtime modules
  as .mpy in the 256 KiB ROMFS partition; a later session imports mpalloc from
  /rom and runs an allocator check there; a second deploy writes nothing; an
  image larger than the partition is refused with the partition untouched.
- --romfs on the stock firmware (no ROMFS partition): one line, exit 2, and
  nothing written on the board's filesystem.
- A deploy cut off by killing the emulator mid-write: the board boots from what
  the flash held, the next deploy completes, and nothing outside mpalloc's own
  paths was written (a file of the user's is untouched).

Every emulator here runs on a flash image of its own (a temporary user cache or
flash file): the user's cached flash is not touched. In CI a missing firmware,
node or rp2040js is a failure.
"""
import os
import signal
import time

import pytest

from board_doubles import in_ci, run_cli  # noqa: F401 (fixture)
from mpalloc_host import emu_rp2040 as E
from mpalloc_host.board import Board
from mpalloc_host.delivery import romfs
from mpalloc_host.dist import runtime_modules
from mpalloc_host.errors import BoardError

ROMFS_FW = "RPI_PICO_ROMFS-v1.28.0.uf2"


def _firmware(name):
    for d in E.shared_dirs():
        if (d / name).is_file():
            return d / name
    msg = "%s not found in %s" % (name, ", ".join(str(d) for d in E.shared_dirs()))
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _open(firmware=None, flash_image=None):
    from mpalloc_host.targets.base import launch, load_profile
    from mpalloc_host.targets.emu import EmuTarget

    caps = {"soft_reset", "fs", "raw_paste", "hard_irq", "word32"}
    try:
        t = launch(EmuTarget, "emu:rp2040", "rp2040", load_profile("emu:rp2040", "rp2040"),
                   lambda: E.EmuRp2040("rp2040", firmware=firmware, flash_image=flash_image), caps, 60)
    except Exception as e:  # TargetError: firmware, node or rp2040js missing
        if in_ci():
            pytest.fail("emu:rp2040 unavailable: %s" % e, pytrace=False)
        pytest.skip("emu:rp2040 unavailable: %s" % e)
    return t


ALLOC_CHECK = """
import mpalloc, gc
from mpalloc import board, vmem, uvm_km, pool, pool_cache as PC, kmem, intr
board.init()
km = uvm_km.kernel_map
i0 = vmem.vmem_stats(km)['inuse']
a = vmem.vmem_alloc(km, 1024, vmem.VM_NOSLEEP | vmem.VM_INSTANTFIT)
b = vmem.vmem_alloc(km, 1024, vmem.VM_NOSLEEP | vmem.VM_INSTANTFIT)
i1 = vmem.vmem_stats(km)['inuse']
vmem.vmem_free(km, a, 1024)
vmem.vmem_free(km, b, 1024)
i2 = vmem.vmem_stats(km)['inuse']
pc = PC.pool_cache_init(64, 8, 0, 0, "romfs-check", None, pool.IPL_VM, None, None, None)
objs = [PC.pool_cache_get(pc, pool.PR_NOWAIT) for _ in range(20)]
k = kmem.kmem_alloc(100, kmem.KM_NOSLEEP)
ok = (a != b and None not in objs and len(set(objs)) == 20 and k is not None)
for o in objs:
    PC.pool_cache_put(pc, o)
kmem.kmem_free(k, 100)
print('@@romfs', mpalloc.__file__, intr.mode == intr.MODE_SIO, ok, i1 - i0, i2 - i0)
"""


def test_deploy_romfs_then_import_from_rom_and_run(run_cli, tmp_path, monkeypatch):
    fw = _firmware(ROMFS_FW)
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))   # this test's own flash, kept between its sessions
    p = run_cli(["deploy", "--romfs", "--port", "emu:rp2040", "--firmware", str(fw)], timeout=240,
                env={"XDG_CACHE_HOME": str(cache)})
    assert p.returncode == 0, p.stdout[-1500:] + p.stderr
    assert "written; mpalloc imports from /rom" in p.stdout, p.stdout[-500:]
    with Board.open("emu:rp2040", firmware=str(fw)) as b:
        # a new session, from the flash the deploy left: the image is there, unchanged
        r = romfs.RomfsDelivery().deploy(b)
        assert r["skipped"][:1] == ["romfs"] and r["copied"] == [] and r["removed"] == [], r
        assert r["partition_bytes"] == 256 * 1024 and 0 < r["image_bytes"] < r["partition_bytes"]
        assert sorted(f[len("mpalloc/"):] for f in r["files"]) == sorted(
            (m.split(".", 1)[1] + (".py" if m.endswith("__init__") else ".mpy")) for m in runtime_modules()
            if m.startswith("mpalloc."))
        assert set(b.eval("__import__('os').listdir('/')")) == {"rom", "board.json"}
        # an image larger than the partition: refused, the partition as it was
        digest = b.eval_block(romfs._DIGEST % r["image_bytes"])
        monkeypatch.setattr(romfs, "build_image", lambda files: b"\xd2\xcd\x31" + bytes(300 * 1024))
        with pytest.raises(romfs.RomfsError) as ei:
            romfs.RomfsDelivery().deploy(b)
        msg = str(ei.value)
        assert "\n" not in msg and "larger than the ROMFS partition (262144 bytes)" in msg, msg
        assert "nothing was written" in msg
        assert b.eval_block(romfs._DIGEST % r["image_bytes"]) == digest
        b.soft_reset()
        out = b.exec(ALLOC_CHECK, timeout=60)
    line = [ln for ln in out.splitlines() if ln.startswith("@@romfs")][0].split()
    assert line[1] == "/rom/mpalloc/__init__.py", line       # code in place from flash
    # MODE_SIO bound; distinct objects from the cache and kmem; the vmem pair taken and given back
    assert line[2:] == ["True", "True", "2048", "0"], line


def test_romfs_on_a_firmware_without_partition_is_one_line(run_cli, tmp_path, monkeypatch):
    fw = _firmware(E.FIRMWARE_NAME)
    cache = tmp_path / "cache"
    p = run_cli(["deploy", "--romfs", "--port", "emu:rp2040", "--firmware", str(fw)], timeout=120,
                env={"XDG_CACHE_HOME": str(cache)})
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stdout + p.stderr, p.stderr
    assert "no ROMFS" in lines[0] and "RPI_PICO_ROMFS" in lines[0] and "nothing was written" in lines[0], lines
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    with Board.open("emu:rp2040", firmware=str(fw)) as b:   # the flash that run left
        assert b.eval("__import__('os').listdir('/')") == []


def test_deploy_killed_mid_write_leaves_a_bootable_board(tmp_path):
    img = tmp_path / "flash.bin"
    only = runtime_modules(())
    t = _open(flash_image=img)
    try:
        b = Board(t)
        b.exec("f = open('/user.py', 'w')\nf.write('# the user\\'s own\\n')\nf.close()")
        time.sleep(1.0)   # the emulator saves its flash once writes pause for 0.3 s
        total = sum(len(d) for _, d in b.plan(mpy=True, only=only))
        pid = t.backend.child.pid

        def progress(done, _total, _path):
            if done > total // 2:
                os.kill(pid, signal.SIGKILL)      # a power cut half-way through the files

        with pytest.raises(BoardError):
            b.deploy(mpy=True, progress=progress, only=only)
    finally:
        t.close()
    assert img.stat().st_size == E.FLASH_BYTES
    t = _open(flash_image=img)                    # boots (banner checked) from what the flash held
    try:
        b = Board(t)
        r = b.deploy(mpy=True, only=only)
        assert r["copied"], r                     # the rest, and what was cut off, goes now
        again = b.deploy(mpy=True, only=only)
        assert again["copied"] == [] and again["removed"] == [], again
        want = {d for d, _ in b.plan(mpy=True, only=only)}
        have = set(b.eval("['mpalloc/' + f for f in __import__('os').listdir('/mpalloc')]"))
        top = set(b.eval("__import__('os').listdir('/')"))
        assert have == {d for d in want if d.startswith("mpalloc/")}, have ^ want
        assert top == {"user.py", "mpalloc", "board.json"}, top
        assert b.eval("open('/user.py').read()") == "# the user's own\n"
        b.soft_reset()
        assert b.eval("__import__('mpalloc.board').board.init()['name']") == "rp2040"
    finally:
        t.close()
