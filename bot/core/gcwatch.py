"""Garbage-collector pauses of a long-running server: freeze what start-up built, and say
how long collections take.

Rasa holds about 1.7 million objects tracked by the collector once the model is loaded
(the NLU pipeline, spaCy's vocabulary, TensorFlow's graph); a full collection walks all
of them, about 585 ms here, during which no conversation moves. None of them is garbage:
`freeze()` moves them to the permanent generation once loading is done, so collections
only walk what turns create. The action server freezes its loaded actions the same way.

`watch(name)` times every collection from then on and writes a line to stderr each time
a pause is the longest so far:

    gc: rasa longest pause 3.1 ms (generation 1)

so the longest pause of a run is the last such line of the process (the end-to-end
benchmark reads them). Collections before `freeze()` (the model load) are not counted.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import time
from typing import Any, Dict, Optional

PAUSE_LINE = "gc: {name} longest pause {ms:.1f} ms (generation {generation})"


class PauseWatch:
    """A `gc.callbacks` entry keeping the longest pause and reporting each new maximum."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.longest_ms = 0.0
        self.collections = 0
        self._started: Optional[float] = None

    def __call__(self, phase: str, info: Dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        pause_ms = (time.perf_counter() - self._started) * 1000
        self._started = None
        self.collections += 1
        if pause_ms > self.longest_ms:
            self.longest_ms = pause_ms
            sys.stderr.write(PAUSE_LINE.format(name=self.name, ms=pause_ms,
                                               generation=info.get("generation")) + "\n")
            sys.stderr.flush()


_watches: Dict[str, PauseWatch] = {}


def freeze() -> int:
    """Collect once, then keep everything alive now out of later collections; returns
    how many objects were frozen. What start-up freed goes back to the system."""
    gc.collect()
    gc.freeze()
    release_freed_memory()
    return gc.get_freeze_count()


def refreeze(name: str) -> None:
    """After a new model replaced the old one: what was frozen is walked again so the
    old model can be freed (one full collection, like at start-up), then the survivors
    are frozen anew."""
    gc.unfreeze()
    sys.stderr.write(f"gc: {name} froze {freeze()} objects after a model swap\n")
    sys.stderr.flush()


def keep_loaded() -> None:
    """A server that froze its start-up (`freeze_and_watch`) just loaded something it
    will keep (the action server's catalog, rebuilt when products change): out of later
    collections too. No collection here: the caller is answering a request."""
    if _watches and os.environ.get("COMPTOIR_GC_FREEZE", "1") != "0":
        gc.freeze()


def release_freed_memory() -> None:
    """glibc's `malloc_trim`: loading frees much (TensorFlow's loading buffers, spaCy's
    string list) that the allocator otherwise keeps resident, about 90 MB in Rasa."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (musl, macOS): nothing to trim this way


def watch(name: str) -> PauseWatch:
    """Start timing this process's collections (once per name)."""
    if name not in _watches:
        _watches[name] = PauseWatch(name)
        gc.callbacks.append(_watches[name])
    return _watches[name]


def freeze_and_watch(name: str) -> None:
    """What a server calls once started. COMPTOIR_GC_FREEZE=0 only times the collections
    (to measure what freezing changes)."""
    if os.environ.get("COMPTOIR_GC_FREEZE", "1") == "0":
        said = f"gc: {name} not frozen (COMPTOIR_GC_FREEZE=0), {len(gc.get_objects())} objects tracked"
    else:
        said = f"gc: {name} froze {freeze()} objects after start-up"
    watch(name)
    sys.stderr.write(said + "\n")
    sys.stderr.flush()
