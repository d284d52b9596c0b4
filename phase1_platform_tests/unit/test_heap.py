"""phase1_platform.heap: startup objects frozen, the collector still on for the rest."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from phase1_platform.heap import settle
import phase1_platform.cli  # the phase1 command's modules
before = gc.get_freeze_count()
settle()
frozen = gc.get_freeze_count()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a reference cycle made after startup
del a, b
print(before, frozen, gc.isenabled(), gc.collect())
"""


def test_settle_freezes_startup_objects_and_later_cycles_are_still_collected():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    before, frozen, enabled, collected = int(out[0]), int(out[1]), out[2], int(out[3])
    assert before == 0 and frozen > 10_000  # the imported modules' objects
    assert enabled == "True"
    assert collected >= 2  # the cycle's two objects (and their __dict__s)
