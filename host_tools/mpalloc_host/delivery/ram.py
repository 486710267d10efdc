"""No filesystem: nothing is copied; each suite (and `mpalloc stats`) sends the
module sources it needs through the REPL, exec'd into sys.modules."""
from .base import Delivery
from .sources import module_closure, ram_modules


class RamDelivery(Delivery):
    name = "ram"

    def skip_deploy(self, board, only):
        return True

    def suite_code(self, runner, info, setup):
        runner.fresh_state()
        return (ram_modules(module_closure(info.source)) + setup + info.source).encode()

    def stats_prepare(self, board, modules, progress=None):
        have = set(board.eval("[k for k in __import__('sys').modules]") or [])
        mods = module_closure("\n".join("import %s" % n for n in modules))
        board.exec(ram_modules(mods, skip=have), timeout=120)
        return {"mode": self.name, "copied": [], "sent": [n for n, _ in mods if n not in have]}
