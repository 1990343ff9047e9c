"""An engine whose step hangs like a C-level hang the halt flag cannot stop (for the process watchdog test)."""

import time

from galad.env.engine import FrotzEngine


class CHangEngine(FrotzEngine):
    def step(self, action, score_global=None):
        if action == "hang in c":
            while True:  # not Z-code: the emulator_halted flag cannot reach this
                time.sleep(1)
        return super().step(action, score_global)
