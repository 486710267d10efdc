"""`mpalloc boards` with a bad profile among good ones, and --board FILE.json."""
import argparse
import json
import shutil
import subprocess

import pytest

from runtimes import MPALLOC, open_or_fail
from mpalloc_host import BOARDS_DIR, cmd_boards, profiles


def test_boards_lists_the_good_profiles_and_names_the_bad_one(tmp_path, monkeypatch, capsys):
    for f in ("schema.json", "rp2040.json", "esp32.json"):
        shutil.copy(BOARDS_DIR / f, tmp_path / f)
    bad = json.loads((BOARDS_DIR / "rp2040.json").read_text())
    bad["name"] = "broken"
    bad["page_size"] = "big"
    (tmp_path / "broken.json").write_text(json.dumps(bad))
    monkeypatch.setattr(profiles, "BOARDS_DIR", tmp_path)
    rc = cmd_boards.run(argparse.Namespace(json=False))
    out, err = capsys.readouterr()
    assert rc == 1
    assert "rp2040" in out and "esp32" in out and "broken" not in out
    assert "bad profile, not listed: " in err and "broken.json: page_size: must be of type integer" in err


def test_board_option_takes_a_profile_file(tmp_path):
    mine = json.loads((BOARDS_DIR / "rp2040.json").read_text())
    mine["name"] = "my_pico"
    mine["title"] = "My own Pico"
    path = tmp_path / "my_pico.json"
    path.write_text(json.dumps(mine))
    assert profiles.load(str(path))["title"] == "My own Pico"
    with pytest.raises(profiles.ProfileError, match="nosuch.json: no such file"):
        profiles.load(str(tmp_path / "nosuch.json"))
    vb = open_or_fail("vboard:rp2040")
    with vb:
        r = subprocess.run([str(MPALLOC), "deploy", "--port", vb.device, "--board", str(path), "-q"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(vb.fs.read_text("/board.json"))["name"] == "my_pico"
