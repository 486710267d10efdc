"""What stats/map/deploy put on a board, --no-deploy, and the README's live virtual
board: `mpalloc vboard --link` kept running, a program's pool made through mpremote
resume, then `mpalloc stats --no-deploy` on the same board shows it.
"""
import signal
import subprocess

from _toolcheck import MPALLOC, MPREMOTE, open_or_fail
from mpalloc_host import cmd_demo, dist


def cli(*args, timeout=120):
    r = subprocess.run([str(MPALLOC)] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def board_files(vb):
    return sorted(f[1:] for f in vb.fs.walk("/") if f.endswith(".py"))


def test_deploy_puts_only_the_runtime_modules_and_tests_adds_the_helpers():
    vb = open_or_fail("vboard:rp2040")
    with vb:
        rc, out, err = cli("deploy", "--port", vb.device, "--board", "rp2040")
        assert rc == 0, err
        runtime = sorted("mpalloc/%s.py" % m.split(".")[1] for m in dist.runtime_modules())
        assert board_files(vb) == runtime
        rc, out, err = cli("deploy", "--port", vb.device, "--board", "rp2040", "--tests")
        assert rc == 0, err
        assert "mptest.py" in board_files(vb) and "copied  mptest.py" in out


def test_stats_deploys_what_it_needs_says_so_and_no_deploy_copies_nothing():
    vb = open_or_fail("vboard:rp2040")
    with vb:
        rc, out, err = cli("stats", "--port", vb.device, "--board", "rp2040", "--no-deploy")
        assert rc == 2 and "--no-deploy, but the board cannot import" in err and "mpalloc.stats" in err
        assert board_files(vb) == []
        rc, out, err = cli("stats", "--port", vb.device, "--board", "rp2040")
        assert rc == 0, err
        assert "checking mpalloc's runtime modules" in out and ("deployed %d firmware files" % len(dist.runtime_modules(("stats",)))) in out
        want = sorted("mpalloc/%s.py" % m.split(".")[1] for m in dist.runtime_modules(("stats",)))
        assert board_files(vb) == want and "mptest.py" not in board_files(vb)
        rc, out, err = cli("stats", "--port", vb.device, "--board", "rp2040", "--no-deploy", "--json")
        assert rc == 0, err
        assert "kernel_map" in out


def test_the_readme_live_board(tmp_path):
    link = tmp_path / "pico"
    p = subprocess.Popen([str(MPALLOC), "vboard", "--board", "rp2040", "--link", str(link)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdout.readline()                       # the pty: the board is up
        assert link.is_symlink()
        rc, out, err = cli("deploy", "--port", link, "--board", "rp2040", "-q")
        assert rc == 0, err
        r = subprocess.run([str(MPREMOTE), "connect", str(link), "resume", "exec",
                            "from mpalloc import board, pool; board.init(); "
                            "pp = pool.pool_init(128, 0, 0, 0, 'mine', None, 0); a = pool.pool_get(pp, 1)"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        for _ in range(2):                        # stats leaves it as it is, too
            rc, out, err = cli("stats", "--port", link, "--board", "rp2040", "--no-deploy", "--json")
            assert rc == 0, err
            assert '"name": "mine"' in out and '"nget": 1' in out
        rc, out, err = cli("map", "--port", link, "--board", "rp2040", "--no-deploy", "-o", tmp_path / "m.svg")
        assert rc == 0 and (tmp_path / "m.svg").stat().st_size > 1000, err
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=20)
    assert not link.exists()


def test_demo_hints_are_true_for_the_port():
    hint = "\n".join(cmd_demo.live_hint("vboard:rp2040", "rp2040"))
    assert "mpalloc vboard --board rp2040 --link /tmp/pico &" in hint
    assert "--port vboard:rp2040" not in hint     # a fresh board: nothing to look at
    hint = "\n".join(cmd_demo.live_hint("/dev/ttyACM0", "rp2040"))
    assert "mpalloc stats --port /dev/ttyACM0 --board rp2040 --no-deploy --watch 1" in hint
