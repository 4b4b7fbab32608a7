"""Work over a whole exam at once (grading, item analysis, merit lists): no cyclic garbage collection
while it makes its 100,000s of rows, cells and arrays.

They make no reference cycles, and the collector walking them again and again as they are made costs
a tenth to a third of the time. ``gc_paused`` restores the collector on the way out (nested uses keep
it off until the outermost ends).

``alongside`` runs a computation on the machine's other core while the caller goes on (see there).
"""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager


@contextmanager
def gc_paused():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def alongside(compute: Callable, /, *args, **kwargs) -> Iterator[Future]:
    """Run ``compute(*args, **kwargs)`` in a worker thread while the body of the ``with`` runs; yields
    its ``Future`` (``.result()`` waits for it and re-raises what it raised). Leaving the ``with`` waits
    for the worker.

    Worth it when both sides spend their time outside the GIL: numpy's large array operations on one
    side, the database driver stepping through rows on the other, each on its own core. ``compute``
    must not touch the session: the transaction has one connection, used by the caller's thread only
    (compute in the worker, store in the caller)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alongside") as worker:
        yield worker.submit(compute, *args, **kwargs)
