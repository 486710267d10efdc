"""mpalloc's benchmark suite, host side.

    suite.py    which device scripts (tests/bench/*.py) run where, and running them
    runner.py   ways to run a script: the MicroPython unix port directly (vboard
                profile heap), CPython, or a connected Board session; @@bench parsing
    goals.py    the goals of the issue, checked against the figures (met / not met)
    report.py   terminal table (rich), BENCHMARKS.md and the cost-vs-free-segments plot

The result of a run is one JSON document (schema 1):
    {"schema": 1, "meta": {...}, "runs": {"micropython": {key: value}, "cpython": {...}, ...},
     "goals": [...], "notes": [...]}
Nothing here asserts a speed: goals are figures with a met / not met column.
"""
SCHEMA = 1
