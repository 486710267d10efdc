"""Board profiles (boards/*.json): loading, validation, and the board's own copy.

A profile is validated twice: against boards/schema.json (jsonschema) and by the
checks a schema cannot express (regions that overlap, aliases of unknown regions,
the managed window outside SRAM, ...). Either way the error names the file and
the field: ``boards/rp2040.json: memory[2].size: must be a positive integer``.

Addresses and sizes may be integers or hex strings "0x..."; ``addr()`` converts.
``device_copy()`` gives what is written to the board as ``board.json``: numbers
as integers, no prose, and on small boards (heap under 32 KB, the micro:bit)
the peripheral list as compact ``[name, base, size, used_by]`` rows.
"""
import json
from functools import lru_cache

from pathlib import Path

from . import BOARDS_DIR
from .errors import ProfileError  # noqa: F401 (re-exported)


SMALL_HEAP = 32768  # boards below this get the compact device copy

_ADDR_MSG = 'must be a non-negative integer or a hex string "0x..."'
_SIZE_MSG = 'must be a positive integer (or a hex string "0x...")'
_POW2_MSG = "must be a power of two from 1 to 65536"


def names():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json") if p.stem != "schema")


def _rel(path):
    try:
        return str(path.relative_to(BOARDS_DIR.parent))
    except ValueError:
        return str(path)


def addr(v):
    """An address/size field as an int ("0x1F" or 31 -> 31)."""
    if isinstance(v, str):
        return int(v, 16)
    return v


@lru_cache(maxsize=1)
def schema():
    return json.loads((BOARDS_DIR / "schema.json").read_text())


def _field(path_parts):
    out = ""
    for p in path_parts:
        out += "[%d]" % p if isinstance(p, int) else ("." + p if out else p)
    return out or "(top level)"


def _message(err, defs):
    """A short, specific message for one jsonschema error."""
    sch = err.schema
    if sch == defs["size"]:
        return _SIZE_MSG
    if sch == defs["addr"]:
        return _ADDR_MSG
    if sch == defs["pow2"]:
        return _POW2_MSG
    v = err.validator
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return "missing required field %r" % missing
    if v == "type":
        return "must be of type %s, not %r" % (err.validator_value, err.instance)
    if v == "enum":
        return "must be one of %s, not %r" % (", ".join(repr(x) for x in err.validator_value), err.instance)
    if v == "const":
        return "must be %r, not %r" % (err.validator_value, err.instance)
    if v == "minimum":
        return "must be >= %s, not %r" % (err.validator_value, err.instance)
    if v == "maximum":
        return "must be <= %s, not %r" % (err.validator_value, err.instance)
    if v == "minItems":
        return "must have at least %d item(s)" % err.validator_value
    if v == "pattern":
        return "%r does not match %s" % (err.instance, err.validator_value)
    return err.message


def _schema_errors(data):
    import jsonschema

    sch = schema()
    v = jsonschema.Draft202012Validator(sch)
    errs = sorted(v.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    out = []
    for e in errs:
        path = list(e.absolute_path)
        if e.validator == "required":
            # name the missing field itself
            missing = e.message.split("'")[1] if "'" in e.message else "?"
            out.append((_field(path + [missing]), "is required"))
        else:
            out.append((_field(path), _message(e, sch["$defs"])))
    return out


def _overlaps(rows):
    """[(field, name, base, size)] -> first pair that overlaps, or None."""
    rows = sorted(rows, key=lambda r: r[2])
    for a, b in zip(rows, rows[1:]):
        if b[2] < a[2] + a[3]:
            return a, b
    return None


def _semantic_errors(data, stem):
    """Checks the schema cannot express. Only runs on a schema-valid profile."""
    errs = []
    if data["name"] != stem:
        errs.append(("name", "is %r but the file is %s.json" % (data["name"], stem)))
    top = 1 << data["word_bits"]
    if data["cpu"]["python_cpus"] > data["cpu"]["cores"]:
        errs.append(("cpu.python_cpus", "%d is more than cpu.cores (%d)" % (data["cpu"]["python_cpus"], data["cpu"]["cores"])))
    mems = data["memory"]
    byname = {}
    for i, m in enumerate(mems):
        if m["name"] in byname:
            errs.append(("memory[%d].name" % i, "%r is also memory[%d]" % (m["name"], byname[m["name"]])))
        byname.setdefault(m["name"], i)
        if addr(m["base"]) + addr(m["size"]) > top:
            errs.append(("memory[%d].size" % i, "region %s ends beyond the %d-bit address space" % (m["name"], data["word_bits"])))
        banks = m.get("banks")
        if banks and banks["count"] * addr(banks["bytes"]) != addr(m["size"]):
            errs.append(("memory[%d].banks" % i, "count * bytes = 0x%x but the region is 0x%x bytes"
                         % (banks["count"] * addr(banks["bytes"]), addr(m["size"]))))
    real = []
    for i, m in enumerate(mems):
        al = m.get("alias_of")
        if al is not None:
            if al not in byname:
                errs.append(("memory[%d].alias_of" % i, "names no memory region: %r" % al))
            elif mems[byname[al]].get("alias_of"):
                errs.append(("memory[%d].alias_of" % i, "%r is itself an alias" % al))
            elif addr(mems[byname[al]]["size"]) != addr(m["size"]):
                errs.append(("memory[%d].size" % i, "alias of %r must have its size 0x%x" % (al, addr(mems[byname[al]]["size"]))))
        else:
            real.append(("memory[%d]" % i, m["name"], addr(m["base"]), addr(m["size"])))
    ov = _overlaps(real)
    if ov:
        errs.append((ov[1][0] + ".base", "region %r overlaps %r (%s); mark one as alias_of the other"
                     % (ov[1][1], ov[0][1], ov[0][0])))
    srams = [(m, i) for i, m in enumerate(mems) if m["kind"] == "sram" and not m.get("alias_of")]

    def in_sram(base, size):
        for m, _ in srams:
            if addr(m["base"]) <= base and base + size <= addr(m["base"]) + addr(m["size"]):
                return m
        return None

    def in_sram_span(base, size):
        # reserved regions may cover several adjacent SRAM regions (e.g. RP2040 SRAM4+5)
        a = base
        while a < base + size:
            m = in_sram(a, 1)
            if m is None:
                return False
            a = addr(m["base"]) + addr(m["size"])
        return True

    for i, r in enumerate(data["reserved"]):
        if not in_sram_span(addr(r["base"]), addr(r["size"])):
            errs.append(("reserved[%d]" % i, "%r (0x%x+0x%x) is not inside the board's SRAM"
                         % (r["name"], addr(r["base"]), addr(r["size"]))))
    ov = _overlaps([("reserved[%d]" % i, r["name"], addr(r["base"]), addr(r["size"])) for i, r in enumerate(data["reserved"])])
    if ov:
        errs.append((ov[1][0] + ".base", "%r overlaps %r (%s)" % (ov[1][1], ov[0][1], ov[0][0])))
    man = data["managed"]
    vb = addr(man["virtual_base"])
    if in_sram(vb, man["bytes"]) is None:
        errs.append(("managed.virtual_base", "window 0x%x+0x%x is not inside one SRAM region" % (vb, man["bytes"])))
    ps = data["page_size"]
    if ps & (ps - 1):
        errs.append(("page_size", "must be a power of two, not %d" % ps))
    elif vb % ps or man["bytes"] % ps:
        errs.append(("managed", "virtual_base and bytes must be multiples of page_size (%d)" % ps))
    per = data["peripherals"]
    pn = {}
    for i, p in enumerate(per):
        if p["name"] in pn:
            errs.append(("peripherals[%d].name" % i, "%r is also peripherals[%d]" % (p["name"], pn[p["name"]])))
        pn.setdefault(p["name"], i)
        if addr(p["base"]) + addr(p["size"]) > top:
            errs.append(("peripherals[%d].size" % i, "window ends beyond the %d-bit address space" % data["word_bits"]))
    ov = _overlaps([("peripherals[%d]" % i, p["name"], addr(p["base"]), addr(p["size"])) for i, p in enumerate(per)])
    if ov:
        errs.append((ov[1][0] + ".base", "window %r overlaps %r (%s)" % (ov[1][1], ov[0][1], ov[0][0])))
    for i, n in enumerate(data["dma"]["capable"]):
        if n not in byname:
            errs.append(("dma.capable[%d]" % i, "names no memory region: %r" % n))
    for i, n in enumerate(data.get("exec_regions", [])):
        if n not in byname:
            errs.append(("exec_regions[%d]" % i, "names no memory region: %r" % n))
        elif not mems[byname[n]]["exec"]:
            errs.append(("exec_regions[%d]" % i, "%r is not executable (exec: false)" % n))
    ring = data["dma"].get("ring")
    if ring and ring["min"] > ring["max"]:
        errs.append(("dma.ring.min", "is larger than dma.ring.max"))
    return errs


def validate(data, path):
    """Raise ProfileError naming `path` and the field of the first problem."""
    rel = _rel(path)
    if not isinstance(data, dict):
        raise ProfileError("%s: the profile must be a JSON object" % rel)
    errs = _schema_errors(data)
    if not errs:
        errs = _semantic_errors(data, path.stem)
    if errs:
        field, msg = errs[0]
        more = " (and %d more problem(s))" % (len(errs) - 1) if len(errs) > 1 else ""
        raise ProfileError("%s: %s: %s%s" % (rel, field, msg, more))
    return data


def load_path(path):
    """Load and validate one profile file."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ProfileError("%s: cannot read: %s" % (_rel(path), e.strerror)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileError("%s: not valid JSON: %s" % (_rel(path), e)) from None
    return validate(data, path)


def load(name):
    """The profile boards/<name>.json, or the file `name` when it ends in .json
    (--board my_board.json: a profile of the user's own, validated the same way)."""
    if str(name).endswith(".json"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ProfileError("board profile %s: no such file" % name)
        return load_path(path)
    path = BOARDS_DIR / f"{name}.json"
    if not path.is_file():
        raise ProfileError(f"unknown board {name!r}: known boards are {', '.join(names())}")
    return load_path(path)


# -- the board's copy ---------------------------------------------------------------

# profile fields the board does not need: prose, and "flash" (how the host flashes firmware);
# the board's own pruning (firmware/mpalloc/board_setup.py _PROSE) drops the same (test_profiles checks)
PROSE = ("notes", "title", "sources", "clock_notes", "python", "bus", "flash", "interrupts", "core", "gc_heap",
         "register_bytes")
_ADDR_KEYS = ("base", "size", "end", "address", "virtual_base", "bytes", "backed", "nocross")


def _strip(v):
    if isinstance(v, dict):
        return {k: (addr(x) if k in _ADDR_KEYS else _strip(x)) for k, x in v.items() if k not in PROSE}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def device_copy(profile, heap_bytes=None):
    """The profile as the board stores it (board.json): integers for addresses,
    no prose. Below SMALL_HEAP bytes of heap peripherals become [name, base,
    size, used_by] rows and memory keeps only what mpalloc.board reads."""
    out = _strip(profile)
    if heap_bytes is not None and heap_bytes < SMALL_HEAP:
        out["peripherals"] = [[p["name"], p["base"], p["size"], p.get("used_by", "")] for p in out["peripherals"]]
        keep = ("name", "kind", "base", "size", "alias_of", "exec", "dma", "banks")
        out["memory"] = [{k: m[k] for k in keep if k in m} for m in out["memory"]
                         if m["kind"] == "sram" and m.get("usable", True)]
        out["reserved"] = [[r["name"], r["base"], r["size"], r["owner"]] for r in out["reserved"]]
        out["micropython"] = {k: v for k, v in out["micropython"].items() if k in ("port", "platform", "heap_bytes", "threads", "hard_irq")}
        out.pop("cpuid", None) if out.get("cpuid", {}).get("method") == "const" else None
    return out


def device_json(profile, heap_bytes=None):
    """device_copy() as compact JSON bytes (what deploy writes to board.json)."""
    return json.dumps(device_copy(profile, heap_bytes), separators=(",", ":")).encode()
