"""Identity verification against the virtual boards, and `mpalloc flash --verify-only`."""
import argparse
import subprocess

import pytest

from mpalloc_host import ROOT, cmd_flash, profiles, vboard
from mpalloc_host.flash import firmware_version, identity, uf2
from mpalloc_host.flash.run import open_link


@pytest.fixture(scope="module")
def vb():
    b = vboard.start("unix")
    yield b
    b.close()


def unix_port_says(expr):
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "micropython"), "-c", "import sys; print(%s)" % expr],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def test_identity_of_a_virtual_board(vb):
    link = open_link(vb.device, "unix")
    try:
        ident = link.identity()
    finally:
        link.close()
    assert ident.platform == "linux" == unix_port_says("sys.platform")
    assert ident.impl == "micropython"
    assert repr(ident.version) == unix_port_says("tuple(sys.implementation.version)")
    assert ident.uname is None  # the unix port has no os.uname()
    assert ident.build() and ident.build() in unix_port_says("sys.version")
    assert ident.mpalloc is None  # nothing deployed on this board

    exp = identity.expected(profiles.load("unix"), ident.build().encode() + b"\0mpalloc/__init__.py\0")
    assert exp.platform == "linux" and exp.mpalloc == firmware_version() and exp.build == ident.build()
    assert identity.compare(ident, exp) == ["mpalloc is missing, expected %s" % firmware_version()]
    exp2 = identity.expected(profiles.load("rp2040"), b"MicroPython v1.22.2 on 2024-02-22")
    bad = identity.compare(ident, exp2)
    assert bad[0] == "sys.platform is 'linux', expected 'rp2'"
    assert bad[1].startswith("machine is") and "RP2040" in bad[1]
    assert "expected 'MicroPython v1.22.2 on 2024-02-22'" in bad[2]


def run_cli(argv):
    p = argparse.ArgumentParser()
    cmd_flash.register(p.add_subparsers())
    args = p.parse_args(argv)
    return args.func(args)


def test_verify_only_from_the_command_line(vb, tmp_path, capsys):
    link = open_link(vb.device, "unix")
    try:
        build = link.identity().build()  # the same unix-port binary runs every virtual board
    finally:
        link.close()
    fw = tmp_path / "fw.uf2"
    fw.write_bytes(uf2.make(build.encode() + b"\0mpalloc/__init__.py\0", 0x10000000, 0xE48BFF56))
    # A fresh vboard:rp2040 has no mpalloc; the image carries it, so verification fails.
    assert run_cli(["flash", "--port", "vboard:rp2040", "--board", "rp2040", str(fw), "--verify-only"]) == 2
    err = capsys.readouterr().err
    assert "not what was flashed: mpalloc is missing, expected %s" % firmware_version() in err
