"""One thread budget for the server: torch intra-op, onnxruntime intra-op and FAISS OpenMP sized in one place.

Each library sizes its pool to all cores by default; with several RPC threads calling them the pools
multiply and fight over the cores. `apply_thread_budget` sets them once per process; onnxruntime
sessions made afterwards (`make_session` with threads=0) read `session_threads()`.
"""

from __future__ import annotations

import logging
import os

_log = logging.getLogger(__name__)
_budget = 0  # threads per encoder / search call set by apply_thread_budget (0: libraries' own defaults)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def apply_thread_budget(threads: int) -> int:
    """Size torch, FAISS and later onnxruntime sessions to `threads` (0: leave them); returns the budget."""
    global _budget
    if threads < 0:
        from evdsearch.errors import InvalidInput

        raise InvalidInput(f"--threads must be 0 (library defaults) or positive, got {threads}")
    _budget = int(threads)
    if not threads:
        return 0
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)  # search never runs torch ops in parallel with each other
    except RuntimeError:  # only settable before torch's first parallel work; then keep what it has
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:  # the index store reports a missing FAISS itself
        pass
    _log.info("thread budget: %d (torch, onnxruntime, FAISS)", threads)
    return threads


def session_threads() -> int:
    """onnxruntime intra-op threads for a session made now (0: its default, all cores)."""
    return _budget
