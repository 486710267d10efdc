# A suite with a failing test (traceback and device log in the report), a skip,
# a metric, and output that is not valid UTF-8.
from mptest import Suite, eq, skip
import sys

s = Suite("mixed")


@s.test
def fails_with_log():
    print("before the failure")
    eq(1, 2, "one vs two")


@s.test
def skipped_on_purpose():
    skip("not today")


@s.test
def garbage_output_then_pass():
    sys.stdout.write("\xff\xfe")
    try:
        sys.stdout.buffer.write(b"\xff\xfe\x80 raw bytes \x01\x02\n")
    except AttributeError:
        pass
    print("@@mpt bogus line the runner must ignore")
    s.metric("garbage_output_then_pass", "ops", 42)


s.run()
