"""Every command that takes --port also takes -p; help texts speak of the tool, not of
the issues it was built under."""
import argparse
import re

from mpalloc_host import cli


def _subparsers():
    parser = cli.build_parser()
    for act in parser._actions:
        if isinstance(act, argparse._SubParsersAction):
            return act.choices
    raise AssertionError("no subcommands")


def test_port_has_p_everywhere():
    seen = 0
    for name, sp in _subparsers().items():
        opts = {s for a in sp._actions for s in a.option_strings}
        if "--port" in opts:
            seen += 1
            assert "-p" in opts, "mpalloc %s: --port without -p" % name
    assert seen >= 7


def test_help_texts_name_no_issue():
    for name, sp in _subparsers().items():
        text = sp.format_help()
        assert not re.search(r"\bissue\s*#?\d|#\d+\b", text, re.I), "mpalloc %s --help: %s" % (name, text)
