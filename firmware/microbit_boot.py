# mpalloc start-up script for the BBC micro:bit v1 (MicroPython 1.x firmware).
#
# `mpalloc flash --board microbit` embeds this file in the firmware's script
# area (0x3E000: 'MP', length, source; see mpalloc_host/flash/microbit_hex.py)
# with the two settings below filled in from the host's mpalloc and the board
# profile. The firmware runs it at power-up, in friendly-REPL mode only.
#
# The micro:bit filesystem has no directories, so the mpalloc package cannot be
# imported here; what fits is taking mpalloc's managed window from the heap
# while it is still unfragmented (mpalloc_ram) and leaving mpalloc_boot in the
# REPL's globals. The one printed line shows on the UART that the script ran.
# The host reads the version back from flash (machine.mem8), which survives a
# soft reset; mpalloc_boot does not.
MPALLOC_VERSION = "0.0.0"
MANAGED_BYTES = 2048

import gc

gc.collect()
mpalloc_ram = bytearray(MANAGED_BYTES)
gc.collect()
mpalloc_boot = (MPALLOC_VERSION, MANAGED_BYTES, gc.mem_free())
print("mpalloc-boot: version %s, managed window %d bytes, heap free %d" % mpalloc_boot)
