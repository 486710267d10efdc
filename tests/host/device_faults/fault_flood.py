# A test that prints without end (the runner bounds the output it keeps).
from mptest import Suite

s = Suite("flood")


@s.test
def prints_forever():
    line = "x" * 200
    while True:
        print(line)


s.run()
