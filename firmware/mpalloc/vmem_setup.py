# vmem_setup: the set-up half of vmem(9): vmem_create and the vmem_set_*
# calls. vmem.py imports it for the call and drops it after
# (lazy.unload), so its code is on the heap only while an arena is set up.
#
# Representation, invariants and locking: vmem.py's header. init() gives a
# new arena every attribute the hot paths read (the class has no __init__:
# its code would stay resident); the tag arrays come from vmem._grow.
# Nothing here runs under heap_lock or in an interrupt handler: everything
# allocates.
from mpalloc import intr
from mpalloc import vmem as _v
from mpalloc.compat import const

_NLISTS = const(30)  # the same values as in vmem.py
_NREL = const(8)
_NOQ = const(-0x40000000)
_QMIN = const(-0x3FFFFFFF)
_QCLASSES = const(16)
_XLIM = const(1 << 40)
_T_SSPAN = const(2)


def _zeros(tc, n):
    return _v._zeros(tc, n)


def init(vm, name, quantum, qcache_max, flags):
    # => a fresh vmem instance; quantum a power of two, qcache_max a multiple of it.
    vm.name = name
    vm.quantum = quantum
    vm.qcache_max = qcache_max
    vm.flags = flags
    vm._qshift = _v._flog2(quantum) if quantum < 0x40000000 else 30
    vm._qmask = quantum - 1
    vm._lock = intr.mutex_init()
    vm._origin = 0  # address of quantum 0 (set by the first span)
    vm._origin_q = 0  # (_origin >> _qshift) mod 2**29
    vm._lo = None  # lowest span address (bytes)
    vm._hi = None  # highest span address (inclusive, bytes)
    # boundary tags
    vm._cap = 0
    vm._seg_start = vm._seg_size = vm._seg_next = vm._seg_prev = vm._free_next = vm._free_prev = None
    vm._seg_type = None
    vm._spare_head = 0
    vm._nspare = 0
    vm._hash_bucket = None
    vm._hash_mask = 0
    vm._hash_shift = 0
    vm._free_head = _zeros("H", _NLISTS)
    vm._free_map = 0
    # accounting (quanta)
    vm._size = 0  # all spans
    vm._inuse = 0  # busy segments (incl. quantum-cached items)
    vm._nfreeop = 0
    vm._nimport = 0
    vm._nrelease = 0
    vm._nfail = 0
    vm._xsteps = 0  # boundary-tag steps beyond the first of each operation
    vm._maxsteps = 1  # worst steps of one operation
    vm._ops = 0  # steps of the best-fit search under way
    vm._nextfit_cursor = _QMIN  # next-fit cursor (quanta, end of the last next-fit allocation)
    # import / reclaim / limit
    vm._importfn = None
    vm._releasefn = None
    vm._arg = None
    vm._import_quantum = quantum
    vm._reclaimfn = None
    vm._limit = 0
    vm._rel = _zeros("i", 2 * _NREL)  # spans to release: (q, size) pairs
    vm._nrel = 0
    # quantum caches (see vmem.py's header for the stack layout)
    n = qcache_max >> vm._qshift
    vm._qcmax = n
    vm._qc_stack = _zeros("H", n * 32) if n else None
    vm._qc_top = _zeros("H", n + 1) if n else None
    for k in range(1, n + 1):
        vm._qc_top[k] = (k - 1) * 32
    vm._qc_state = bytearray(0)  # quantum-cache state per quantum of the window
    vm._qc_nwindow = 0  # window size in quanta (len(_qc_state))
    vm._qfills = 0
    vm._qdrains = 0
    vm._dead = False
    vm._grow(32)
    # tag 0: the segment-list sentinel
    vm._spare_head = vm._free_next[0]
    vm._nspare -= 1
    vm._seg_next[0] = 0
    vm._seg_prev[0] = 0
    vm._seg_start[0] = _NOQ


def chk_flags(fn, flags):
    # exactly one of M_WAITOK/M_NOWAIT, at most one fit strategy
    f = flags & 0xB000 if flags.__class__ is int else 0
    if flags.__class__ is not int or not (flags + 1) & 2 or f & (f - 1):
        from mpalloc import vmem_diag

        vmem_diag.chk_flags(fn, flags)


def create(name, base, size, quantum, qcache_max, flags):
    # vmem_create (vmem.py)
    for v in (base, size, quantum, qcache_max, flags):
        if not isinstance(v, int):
            raise TypeError("vmem_create: base, size, quantum, qcache_max and flags must be ints (got %r)" % (v,))
    if not isinstance(name, str):
        raise TypeError("vmem_create: name %r is not a str" % (name,))
    if quantum <= 0 or quantum & (quantum - 1):
        raise ValueError("vmem_create: quantum %r is not a power of two" % (quantum,))
    if qcache_max < 0 or qcache_max & (quantum - 1):
        raise ValueError("vmem_create: qcache_max %d is not a multiple of the quantum %d" % (qcache_max, quantum))
    if size < 0:
        raise ValueError("vmem_create: size %d < 0" % size)
    if quantum > _XLIM or qcache_max > _XLIM:
        raise ValueError("vmem_create: quantum %d or qcache_max %d beyond 2**40" % (quantum, qcache_max))
    chk_flags("vmem_create", flags)
    if qcache_max > _QCLASSES * quantum:
        qcache_max = _QCLASSES * quantum  # clamped as NetBSD does
    vm = _v.vmem()
    init(vm, name[:16], quantum, qcache_max, flags)
    if size:
        _v._add(vm, base, size, _T_SSPAN, "vmem_create")
    _v.vmem_list.append(vm)
    return vm


def set_import(vm, importfn, releasefn, arg, import_quantum):
    # vmem_set_import (vmem.py)
    _v._chk_arena("vmem_set_import", vm)
    if not (importfn is None or callable(importfn)) or not (releasefn is None or callable(releasefn)):
        raise TypeError("vmem_set_import: importfn and releasefn must be callable or None")
    if not isinstance(import_quantum, int):
        raise TypeError("vmem_set_import: import_quantum must be an int, not %s" % type(import_quantum).__name__)
    if import_quantum == 0:
        import_quantum = vm.quantum
    if import_quantum < 0 or import_quantum & vm._qmask:
        raise ValueError(
            "vmem_set_import: import_quantum %d is not a multiple of the quantum %d" % (import_quantum, vm.quantum)
        )
    vm._importfn = importfn
    vm._releasefn = releasefn
    vm._arg = arg
    vm._import_quantum = import_quantum


def set_reclaim(vm, reclaimfn):
    # vmem_set_reclaim (vmem.py)
    _v._chk_arena("vmem_set_reclaim", vm)
    if not (reclaimfn is None or callable(reclaimfn)):
        raise TypeError("vmem_set_reclaim: reclaimfn must be callable or None")
    vm._reclaimfn = reclaimfn


def set_limit(vm, limit):
    # vmem_set_limit (vmem.py)
    _v._chk_arena("vmem_set_limit", vm)
    if not isinstance(limit, int):
        raise TypeError("vmem_set_limit: limit must be an int, not %s" % type(limit).__name__)
    if limit < 0:
        raise ValueError("vmem_set_limit: limit %d < 0" % limit)
    vm._limit = limit
