"""A filesystem with directories (rp2, esp32, the virtual boards, wasm32):
firmware/mpalloc/*.py -> /mpalloc/, the top-level helpers and board.json -> /,
unchanged files skipped by comparing a sha256 computed on the board."""
from ..errors import BoardError
from .base import Delivery

# Below this many bytes of gc heap (in 32-bit-board terms) the allocator stack
# cannot be compiled from source beside its managed window and a program (the
# ESP32's 110 KB, the Pico's 233 KB): compiled code ends up the same size, but
# compiling needs the parse tree's heap and leaves the heap in pieces (on
# vboard:rp2040 board.init() then finds a 16,896-byte window, 34,048 from .mpy;
# on wasm32 the compiler's garbage stays until the command ends). Such boards
# get bytecode from mpy-cross unless told otherwise.
MPY_BELOW_HEAP = 256 * 1024


class FsDelivery(Delivery):
    name = "fs"
    dirs = True

    def wants_mpy(self, board):
        heap = board.info.get("heap_total") or 0
        heap32 = heap * 32 // (board.info.get("word_bits") or 32)
        return bool(board.info.get("mpy")) and 0 < heap32 < MPY_BELOW_HEAP

    def before_write(self, board, todo):
        if any(d.startswith("mpalloc/") for d, _ in todo):
            board.exec("import os\ntry:\n os.mkdir('mpalloc')\nexcept OSError:\n pass")

    def free_space(self, board):
        try:
            st = board.eval("(lambda s: (s[0], s[4]))(__import__('os').statvfs('/'))")
        except BoardError:
            return None
        if not (isinstance(st, (list, tuple)) and len(st) == 2 and all(isinstance(x, int) for x in st)):
            return None
        return st[0] * st[1], st[0] or 1
