# A suite that passes: run after a faulty one to show the run went on.
from mptest import Suite, eq

s = Suite("ok")


@s.test
def adds():
    eq(2 + 2, 4, "sum")


@s.test
def prints_and_passes():
    print("device log line")


s.run()
