"""phase1_platform.heap: startup objects frozen, the collector still on for the rest."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from phase1_platform.heap import loading

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle
    return a

with loading():
    off_while_loading = not gc.isenabled()
    import phase1_platform.cli  # the phase1 command's modules
    with loading():  # nested: leaves the collector off for the outer block
        pass
    still_off = not gc.isenabled()
    cycle()  # garbage made while loading: frozen with the rest, not collected
frozen = gc.get_freeze_count()
cycle()  # a cycle made after startup
print(off_while_loading, still_off, frozen, gc.isenabled(), gc.collect())
"""


def test_loading_freezes_startup_objects_and_later_cycles_are_still_collected():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[:2] == ["True", "True"]  # off while loading, also after a nested block
    assert int(out[2]) > 10_000  # the imported modules' objects
    assert out[3] == "True"  # on again afterwards
    assert int(out[4]) >= 2  # the later cycle's two objects, not the frozen one


def test_the_definitions_load_under_loading():
    """A Dagster process's startup (importing ``phase1_platform.definitions``) runs under
    ``loading``: afterwards the collector is on and the definitions are frozen."""
    probe = ("import gc, phase1_platform.definitions as d; print(gc.isenabled(), "
             "gc.get_freeze_count() > 100_000, len(d.defs.assets or []) > 0)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "True"]
