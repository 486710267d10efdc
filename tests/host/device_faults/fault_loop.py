# A suite whose first test never ends (the runner must interrupt it).
from mptest import Suite

s = Suite("loop")


@s.test
def spins_forever():
    while True:
        pass


@s.test
def never_reached():
    pass


s.run()
