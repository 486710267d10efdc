"""`mpalloc flash`: put MicroPython (with mpalloc frozen or embedded) on a board, and verify it.

    mpalloc flash --port /dev/ttyACM0 --board rp2040 RPI_PICO-mpalloc.uf2
    mpalloc flash --port /dev/ttyUSB0 --board esp32 --erase ESP32_GENERIC-mpalloc.bin
    mpalloc flash --port /dev/ttyACM0 --board microbit /usr/share/firmware-microbit-micropython/firmware.hex
    mpalloc flash --port qemu:microbit --board microbit firmware.hex     (boots that .hex in QEMU)
    mpalloc flash ... --verify-only                                     (read and compare, write nothing)
"""
import sys

from .flash import FlashError
from .flash.run import flash_file
from .profiles import ProfileError


def register(subparsers):
    p = subparsers.add_parser("flash", help="flash MicroPython firmware (mpalloc frozen or embedded) and verify it",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--port", "-p", required=True, help="serial port, vboard:<board> or qemu:microbit")
    p.add_argument("--board", "-b", required=True, help="board profile (boards/<board>.json): rp2040, esp32, microbit")
    p.add_argument("firmware", help=".uf2 (rp2040), .bin (esp32) or .hex (micro:bit)")
    p.add_argument("--verify-only", action="store_true",
                   help="write nothing: read the board's identity and compare it with the image")
    p.add_argument("--erase", action="store_true", help="esp32: erase the whole flash first (esptool --erase-all)")
    p.add_argument("--force", action="store_true", help="flash even if the board already runs this image")
    p.add_argument("--drive", action="append", default=[], metavar="DIR",
                   help="mount point of the boot drive (RPI-RP2 / MICROBIT) if it is not found by itself")
    p.add_argument("--out", metavar="FILE.hex", help="micro:bit: also keep the built .hex here")
    p.set_defaults(func=run)
    return p


def run(args):
    def say(msg):
        print("mpalloc flash: " + msg, flush=True)

    try:
        r = flash_file(args.port, args.board, args.firmware, verify_only=args.verify_only, erase=args.erase,
                       force=args.force, drive_roots=args.drive, out=args.out, say=say)
    except (FlashError, ProfileError) as e:
        print("mpalloc flash: error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mpalloc flash: interrupted: the board may be half-written; flash it again", file=sys.stderr)
        return 130
    say({"flashed": "done: %s now runs the image" % r.port,
         "skipped": "done: nothing written",
         "verified": "done: %s runs the image" % r.port}[r.action])
    return 0
