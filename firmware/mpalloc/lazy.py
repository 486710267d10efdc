# lazy: modules of slow paths, set-up and diagnostics imported on first use and
# dropped after, so that their code is on the heap only while it runs.
#
#   unload(name)   forget mpalloc.<name>: its code and globals become garbage
#                  unless a caller still holds them; the next use imports it
#                  again
#   hold()         a batch of calls begins (e.g. kmem's statistics of 20
#                  caches): unload() does nothing until the matching
#   release(names) which unloads `names` once when the last hold ends
#
# The idiom (docs/DEVELOPING.md, "Slow paths out of the core"):
#
#   def vmem_destroy(vm):
#       from mpalloc import vmem_setup      # imported on first use
#       try:
#           return vmem_setup.destroy(vm)
#       finally:
#           lazy.unload("vmem_setup")
#
# Never on a path that runs under heap_lock or in a hard interrupt (the import
# allocates). Kept out of compat: the micro:bit's frozen suites have no RAM for
# one more global there.
import sys

_held = [0]  # hold() depth: unload() waits while > 0


def hold():
    """The modules loaded from now on stay until release()."""
    # => thread context; always paired with release() (try/finally).
    _held[0] += 1


def release(names):
    """End a hold(); the last one unloads each of `names`."""
    # => thread context; names: a tuple of module names.
    _held[0] -= 1
    for n in names:
        unload(n)


def unload(name):
    """Forget the module mpalloc.<name> (not while a hold() is on)."""
    # => thread context (never under heap_lock: its re-import allocates);
    #    name is a module of slow paths with no state of its own.
    if _held[0] or sys.platform == "webassembly":
        return  # (webassembly collects only between programs: a reload would pile up)
    sys.modules.pop("mpalloc." + name, None)
    pkg = sys.modules.get("mpalloc")
    if pkg is not None:
        try:
            delattr(pkg, name)
        except (AttributeError, KeyError):  # never imported (KeyError: MicroPython)
            pass
