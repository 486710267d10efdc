"""Setup in layers (host_tools/setup.sh): make demo needs no Debian package and no
Node.js; make test needs the emulators and the frozen build's tools; the frozen
micro:bit build names the apt source it adds. --print installs nothing."""
import subprocess

import pytest

from mpalloc_host import ROOT


def layer(name):
    r = subprocess.run(["bash", str(ROOT / "host_tools" / "setup.sh"), name, "--print"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return dict(line.split(": ", 1) if ": " in line else (line, "") for line in r.stdout.splitlines())


def test_demo_layer_is_only_the_venv():
    d = layer("demo")
    assert d["debian"] == "" and "npm" not in d and "apt-source" not in d


def test_test_layer_has_emulators_node_and_the_frozen_tools():
    d = layer("test")
    pk = d["debian"].split()
    for p in ("qemu-system-arm", "nodejs", "firmware-microbit-micropython", "yotta", "gcc-arm-none-eabi"):
        assert p in pk
    assert "host_tools/node" in d["npm"] and "mpalloc-debsrc" in d["apt-source"]


def test_frozen_layer_names_its_apt_source_and_has_no_emulators():
    d = layer("frozen")
    pk = d["debian"].split()
    assert "yotta" in pk and "srecord" in pk and "qemu-system-arm" not in pk and "nodejs" not in pk
    assert d["apt-source"].startswith("/etc/apt/sources.list.d/mpalloc-debsrc.sources (deb-src bookworm main")


@pytest.mark.parametrize("target,want", [("demo", "setup.sh demo"), ("dist", "setup.sh demo"),
                                         ("test", "setup.sh test"), ("microbit-frozen", "setup.sh frozen")])
def test_make_targets_use_their_layer(target, want):
    r = subprocess.run(["make", "-n", target], cwd=str(ROOT), capture_output=True, text=True, timeout=30)
    assert want in r.stdout, r.stdout


def test_unknown_layer_is_refused():
    r = subprocess.run(["bash", str(ROOT / "host_tools" / "setup.sh"), "everything"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "unknown layer 'everything'" in r.stderr
