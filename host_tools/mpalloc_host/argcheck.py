"""Argument types for the CLI and the pytest plugin (argparse ``type=`` functions).

Each checks one kind of value and raises argparse.ArgumentTypeError with a
one-line reason, which argparse reports as ``argument --NAME: REASON`` (exit
status 2; pytest: a usage error). Deadlines are finite positive seconds
(``nan``, ``inf``, 0 and negative numbers would remove or break the deadline);
counts are non-negative integers.
"""
import argparse
import math


def seconds(text):
    """A deadline: a finite number of seconds > 0."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % (text,)) from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError("%r: a deadline must be a finite number of seconds > 0" % (text,))
    return v


def count(text):
    """A count: an integer >= 0."""
    try:
        v = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError("%r is not a whole number" % (text,)) from None
    if v < 0:
        raise argparse.ArgumentTypeError("%r: a count must be 0 or more" % (text,))
    return v


def env_seconds(name, default):
    """Seconds from environment variable `name` (default if unset or empty);
    ValueError naming the variable if it is not a finite number >= 0."""
    import os

    text = os.environ.get(name)
    if not text:
        return default
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not math.isfinite(v) or v < 0:
        raise ValueError("%s=%r: must be a finite number of seconds >= 0" % (name, text))
    return v
