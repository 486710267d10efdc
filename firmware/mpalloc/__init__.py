# mpalloc: NetBSD's memoryallocators(9) family for MicroPython boards.
#
# Each allocator lives in the module named after its man page:
#   vmem (vmem(9)), uvm_km (uvm_km(9)), pool (pool(9)), pool_cache (pool_cache(9)),
#   kmem (kmem(9)), extent (extent(9)); DragonFly's kmalloc, objcache, mpipe, zone.
# Nothing is imported here: import the layer you need, e.g. `from mpalloc.vmem import *`.
__version__ = "0.1.0"
