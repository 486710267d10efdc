"""Board profiles: every shipped profile is valid and says what the issue asks;
a broken copy gives an error naming the file and the field."""
import copy
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

from mpalloc_host import profiles as P  # noqa: E402

BOARDS = ("rp2040", "esp32", "microbit", "unix")


def test_all_boards_present_and_valid():
    assert set(BOARDS) <= set(P.names())
    for n in BOARDS:
        p = P.load(n)
        assert p["name"] == n


def test_schema_is_a_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(P.schema())


def test_rp2040_facts():
    p = P.load("rp2040")
    assert p["cpu"]["cores"] == 2 and p["cpu"]["clock_hz"] == 125_000_000 and p["word_bits"] == 32
    per = {x["name"]: (P.addr(x["base"]), P.addr(x["size"])) for x in p["peripherals"]}
    assert per["UART0"] == (0x40034000, 0x4000)
    assert per["DMA"][0] == 0x50000000 and per["SIO"][0] == 0xD0000000 and per["PIO1"][0] == 0x50300000
    mem = {m["name"]: m for m in p["memory"]}
    striped = mem["SRAM0-3"]
    assert striped["banks"]["striped"] and P.addr(striped["size"]) == 0x40000
    alias = mem["SRAM0-3 non-striped"]
    assert alias["alias_of"] == "SRAM0-3" and P.addr(alias["base"]) == 0x21000000
    # SRAM counted once: 256 KiB + 4 + 4 KiB, the alias not again
    sram = sum(P.addr(m["size"]) for m in p["memory"] if m["kind"] == "sram" and not m.get("alias_of"))
    assert sram == 270336
    assert p["micropython"]["march"] == "armv6m" and p["micropython"]["hard_irq"] is True
    assert p["micropython"]["hard_irq_since"] == "1.26.0"
    assert p["cpuid"]["method"] == "sio" and P.addr(p["cpuid"]["address"]) == 0xD0000000
    assert p["dma"]["ring"]["align_to_size"] is True and p["dma"]["ring"]["max"] == 32768
    xip = mem["XIP"]
    assert xip["kind"] == "flash" and P.addr(xip["base"]) == 0x10000000 and xip["exec"]


def test_esp32_facts():
    p = P.load("esp32")
    assert p["micropython"]["hard_irq"] is False and p["micropython"]["march"] == "xtensawin"
    mem = {m["name"]: m for m in p["memory"]}
    assert mem["IRAM (SRAM0)"]["exec"] and not mem["IRAM (SRAM0)"]["dma"]
    assert "IRAM (SRAM0)" in p["exec_regions"]
    assert mem["SRAM1 (IRAM view)"]["alias_of"] == "SRAM1 (DRAM)"
    per = {x["name"]: P.addr(x["base"]) for x in p["peripherals"]}
    assert per["UART0"] == 0x3FF40000 and per["UART2"] == 0x3FF6E000 and per["SPI3 (VSPI)"] == 0x3FF65000
    assert set(p["dma"]["capable"]) == {"SRAM2 (DRAM)", "SRAM1 (DRAM)"}


def test_microbit_facts():
    p = P.load("microbit")
    assert p["cpu"]["cores"] == 1 and p["cpu"]["clock_hz"] == 16_000_000
    per = {x["name"]: P.addr(x["base"]) for x in p["peripherals"]}
    assert per["UART0"] == 0x40002000 and per["NVMC"] == 0x4001E000 and per["GPIO (P0)"] == 0x50000000
    assert p["micropython"]["heap_bytes"] == 10240


def test_device_copy_has_ints_and_no_prose():
    for n in BOARDS:
        p = P.load(n)
        d = P.device_copy(p)
        text = json.dumps(d)
        assert '"notes"' not in text and '"0x' not in text
        assert isinstance(d["managed"]["virtual_base"], int)
        assert d["peripherals"] == [] or isinstance(d["peripherals"][0]["base"], int)
        small = P.device_copy(p, 10240)
        assert all(isinstance(r, list) and len(r) == 4 for r in small["peripherals"])
        assert len(P.device_json(p, 10240)) < len(P.device_json(p))
    mb = P.device_json(P.load("microbit"), 10240)
    assert len(mb) < 2048  # fits the micro:bit's ~9.5 KB heap with room to spare


# -- broken copies -------------------------------------------------------------------

def broken(tmp_path, monkeypatch, name, mutate):
    """A temporary boards/ dir with a mutated copy of `name`; returns the error text."""
    bdir = tmp_path / "boards"
    bdir.mkdir()
    (bdir / "schema.json").write_text((P.BOARDS_DIR / "schema.json").read_text())
    data = copy.deepcopy(json.loads((P.BOARDS_DIR / ("%s.json" % name)).read_text()))
    mutate(data)
    (bdir / ("%s.json" % name)).write_text(json.dumps(data))
    monkeypatch.setattr(P, "BOARDS_DIR", bdir)
    P.schema.cache_clear()
    try:
        with pytest.raises(P.ProfileError) as ei:
            P.load(name)
    finally:
        P.schema.cache_clear()
    return str(ei.value)


def _set(path, value):
    def m(d):
        *head, last = path
        for k in head:
            d = d[k]
        d[last] = value
    return m


def _del(path):
    def m(d):
        *head, last = path
        for k in head:
            d = d[k]
        del d[last]
    return m


@pytest.mark.parametrize("mutate, expect", [
    (_set(["memory", 2, "size"], -5), "boards/rp2040.json: memory[2].size: must be a positive integer"),
    (_set(["memory", 2, "size"], "0x0"), "boards/rp2040.json: memory[2].size: must be a positive integer"),
    (_set(["memory", 6, "base"], "twenty"), 'boards/rp2040.json: memory[6].base: must be a non-negative integer or a hex string'),
    (_del(["cpu", "clock_hz"]), "boards/rp2040.json: cpu.clock_hz: is required"),
    (_del(["peripherals", 13, "size"]), "boards/rp2040.json: peripherals[13].size: is required"),
    (_set(["micropython", "march"], "armv9"), "boards/rp2040.json: micropython.march: must be one of"),
    (_set(["cpu", "cores"], "2"), "boards/rp2040.json: cpu.cores: must be of type integer"),
    (_set(["dma", "align"], 3), "boards/rp2040.json: dma.align: must be a power of two"),
    (_set(["cpuid", "method"], "magic"), "boards/rp2040.json: cpuid.method: must be one of"),
    (_set(["name"], "pico"), "boards/rp2040.json: name: is 'pico' but the file is rp2040.json"),
    (_set(["cpu", "python_cpus"], 3), "boards/rp2040.json: cpu.python_cpus: 3 is more than cpu.cores"),
    (_set(["memory", 9, "alias_of"], "SRAM9"), "boards/rp2040.json: memory[9].alias_of: names no memory region: 'SRAM9'"),
    (lambda d: (_del(["memory", 9, "alias_of"])(d), _set(["memory", 9, "base"], "0x20000000")(d)),
     "boards/rp2040.json: memory[9].base: region 'SRAM0-3 non-striped' overlaps 'SRAM0-3' (memory[6]); mark one as alias_of"),
    (_set(["peripherals", 14, "base"], "0x40034000"), "overlaps 'UART0'"),
    (_set(["managed", "virtual_base"], "0x30000000"), "boards/rp2040.json: managed.virtual_base: window 0x30000000+0x10000 is not inside one SRAM region"),
    (_set(["managed", "virtual_base"], "0x20010080"), "boards/rp2040.json: managed: virtual_base and bytes must be multiples of page_size"),
    (_set(["dma", "capable", 0], "NOPE"), "boards/rp2040.json: dma.capable[0]: names no memory region: 'NOPE'"),
    (_set(["reserved", 0, "base"], "0x30000000"), "boards/rp2040.json: reserved[0]: '.data/.bss' (0x30000000+0x71c0) is not inside the board's SRAM"),
    (_set(["memory", 6, "banks", "count"], 3), "boards/rp2040.json: memory[6].banks: count * bytes"),
])
def test_broken_profile_names_file_and_field(tmp_path, monkeypatch, mutate, expect):
    msg = broken(tmp_path, monkeypatch, "rp2040", mutate)
    assert expect in msg, msg


def test_exec_region_must_be_executable(tmp_path, monkeypatch):
    def m(d):
        for x in d["memory"]:
            if x["name"] == "IRAM (SRAM0)":
                x["exec"] = False
    msg = broken(tmp_path, monkeypatch, "esp32", m)
    assert "boards/esp32.json: exec_regions[0]: 'IRAM (SRAM0)' is not executable" in msg


def test_not_json_and_unknown_board(tmp_path, monkeypatch):
    bdir = tmp_path / "boards"
    bdir.mkdir()
    (bdir / "bad.json").write_text("{ nope")
    monkeypatch.setattr(P, "BOARDS_DIR", bdir)
    with pytest.raises(P.ProfileError, match=r"bad.json: not valid JSON"):
        P.load("bad")
    with pytest.raises(P.ProfileError, match=r"unknown board 'zz': known boards are bad"):
        P.load("zz")


def test_host_and_board_drop_the_same_profile_fields():
    """The host's trimmed copy (profiles.PROSE) and the board's own pruning
    (firmware/mpalloc/board_setup.py _PROSE) agree on what a board does not need."""
    import ast

    src = (Path(__file__).parents[3] / "firmware" / "mpalloc" / "board_setup.py").read_text()
    board = [n.value for n in ast.walk(ast.parse(src))
             if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "_PROSE"]
    assert board and set(ast.literal_eval(board[0])) == set(P.PROSE)
