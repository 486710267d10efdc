# Freeze mpalloc into a MicroPython firmware build (bytecode runs from flash, so
# importing mpalloc costs RAM only for its data, not for its code).
#
#   rp2:   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/mpalloc/firmware/manifest.py
#   esp32: make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/mpalloc/firmware/manifest.py
#
# This file is read by MicroPython's tools/makemanifest.py, not imported: paths
# are relative to this file. The port's own manifest comes first so the board
# keeps its usual frozen modules (asyncio, neopixel, ...).
include("$(PORT_DIR)/boards/manifest.py")

# The allocators: every module of firmware/mpalloc/.
package("mpalloc")

# The on-device test helper, so the device suites run on a frozen build too.
module("mptest.py")
