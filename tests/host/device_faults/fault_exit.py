# A test that resets the board under the runner (sys.exit() in the raw REPL is a
# soft reset on boards; the virtual board restarts MicroPython).
from mptest import Suite
import sys

s = Suite("resets")


@s.test
def resets_board():
    print("resetting")
    sys.exit()


@s.test
def never_reached():
    pass


s.run()
