# A board that prints things aimed at the host: Python, JSON, @@mpt lines with
# code in their fields, terminal escape sequences. The host must treat all of it
# as data (MARKER is replaced by the host test with a path that must not appear).
from mptest import Suite

s = Suite("evil")
CODE = "__import__('os').system('touch MARKER')"


@s.test
def prints_code():
    print(CODE)
    print("exec(%r)" % CODE)
    print('{"__class__": "os.system", "args": ["touch MARKER"], "eval": "%s"}' % CODE)
    print("\x1b]0;" + CODE + "\x07\x1b[2J\x1b[6n\x1bP+q544e\x1b\\")
    print("@@v " + CODE)
    print("@@mpt metric evil prints_code cmd=" + CODE)


s.run()
