# mptest_long: how big a stress suite's run is (test_isr, test_softint).
#
#     from mptest_long import full_figures
#     LONG = full_figures()
#
# Full figures (issue #4's 100,000 interrupt-context operations, a 1,000,000-op
# race) on the unix port, where threads are real and they take a few seconds,
# or anywhere MPALLOC_LONG=1 is set; MPALLOC_SHORT=1 forces the short run.
# Boards without os.getenv run short. A module of its own so that mptest stays
# small enough to compile on the micro:bit.
import sys


def full_figures():
    try:
        import os

        env = os.getenv
    except (ImportError, AttributeError):
        return False
    if env("MPALLOC_SHORT"):
        return False
    return sys.platform == "linux" or bool(env("MPALLOC_LONG"))
