"""The flat micro:bit firmware rebuilt with mpalloc's suites frozen into flash
(qemu:microbit-frozen, flash/microbit_frozen.py): a suite that is frozen runs
from there (its modules imported from the REPL one by one, then its s.run());
other suites go the flat way."""
from .flat import FlatDelivery


class FrozenDelivery(FlatDelivery):
    name = "frozen"

    def skip_deploy(self, board, only):
        return only == ["mptest"]   # mptest and the suites' code are in flash

    def run_frozen(self, runner, info, res):
        from ..flash import microbit_frozen

        if info.path.name not in microbit_frozen.FROZEN_SUITES:
            return False
        return runner.run_frozen_suite(info, res, lambda timeout: microbit_frozen.run_suite(
            runner.board, info.path.name, timeout=timeout))
