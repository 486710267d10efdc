# Tests that print a line at a time for a while (a fault is injected into the
# serial line meanwhile).
from mptest import Suite
import time

s = Suite("chatty")


@s.test
def talks():
    for i in range(12):
        print("line %d of talk" % i)
        time.sleep(0.05)


@s.test
def talks_more():
    for i in range(12):
        print("line %d of more talk" % i)
        time.sleep(0.05)


s.run()
