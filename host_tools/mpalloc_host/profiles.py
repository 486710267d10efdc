"""Board profiles (boards/*.json): loading and validation.

Minimal loader; the schema and full validation live in boards/schema.json.
"""
import json

from . import BOARDS_DIR


class ProfileError(ValueError):
    """A profile is missing or broken; the message names the file and field."""


def names():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json") if p.stem != "schema")


def load(name):
    path = BOARDS_DIR / f"{name}.json"
    if not path.is_file():
        raise ProfileError(f"unknown board {name!r}: known boards are {', '.join(names())}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ProfileError(f"{path}: not valid JSON: {e}") from None
    return data
