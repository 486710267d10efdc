# A test that sleeps long (the host kills the board or resets it meanwhile).
from mptest import Suite
import time

s = Suite("sleepy")


@s.test
def sleeps():
    print("sleeping")
    time.sleep(30)


s.run()
