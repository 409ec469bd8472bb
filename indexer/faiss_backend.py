"""The one place that talks to FAISS and chooses faiss-gpu (installed and a GPU visible) or faiss-cpu.

Indexes are always inner-product (embeddings are unit length, so scores are cosine similarities)
and always written and read as CPU indexes; a GPU only trains, fills or serves a copy.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import IncompatibleArtifact, InvalidInput

log = logging.getLogger(__name__)


@cache
def _faiss() -> Any:
    import faiss  # faiss-cpu and faiss-gpu both install this module

    return faiss


@cache
def gpu_available() -> bool:
    """True when the installed faiss is a GPU build and sees at least one GPU."""
    faiss = _faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def use_gpu(device: str) -> bool:
    """`--device cpu` keeps FAISS on the CPU; otherwise a GPU is used when faiss-gpu can."""
    return device != "cpu" and gpu_available()


def make_index(dim: int, factory: str) -> Any:
    """An empty inner-product index from a faiss factory string (Flat, HNSW32, IVF1024,Flat, ...)."""
    faiss = _faiss()
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        raise InvalidInput(f"faiss cannot build index {factory!r} ({_first_line(err)}); "
                           f"try 'Flat', 'HNSW32' or 'IVF1024,Flat'") from err


def _first_line(err: Exception) -> str:
    """The message of a faiss C++ error, without its "Error in <signature> at file:line:" prefix."""
    text = " ".join(str(err).split())
    match = re.search(r" at \S+:\d+: (.+)$", text)
    return match.group(1) if match else text or type(err).__name__


def suggest_nlist(count: int) -> int:
    """A power of two near 4·sqrt(n) lists, with at least 39 training points per list (faiss' advice)."""
    target = max(1.0, min(4 * math.sqrt(count), count / 39))
    return 2 ** int(math.log2(target))


def check_trainable(index: Any, factory: str, count: int) -> None:
    """Refuse, before any work, an IVF index with more lists than there are vectors to train it."""
    ivf = _faiss().try_extract_index_ivf(index)
    if ivf is not None and count < ivf.nlist:
        nlist = suggest_nlist(count)
        smaller = re.sub(r"IVF\d+", f"IVF{nlist}", factory, count=1)
        # Below a few lists an IVF saves nothing over an exact scan, so only suggest one when it helps.
        advice = f"use a smaller IVF such as {smaller!r}, or 'Flat'" if nlist >= 16 else "use 'Flat'"
        raise InvalidInput(
            f"index {factory!r} has {ivf.nlist} IVF lists but there are only {count} images to train it "
            f"(it needs at least one per list, ideally 39+); {advice} (exact search, fine up to a few "
            f"hundred thousand images)"
        )


def build(vectors: np.ndarray, factory: str, device: str = "auto") -> Any:
    """Train (when the index type needs it) and fill an index; returns a CPU index ready to write."""
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = make_index(vectors.shape[1], factory)
    check_trainable(index, factory, len(vectors))
    work = _to_gpu(index) if use_gpu(device) else index
    try:
        if not work.is_trained:
            work.train(vectors)
        work.add(vectors)
    except RuntimeError as err:
        raise InvalidInput(f"faiss could not train index {factory!r} on {len(vectors)} vectors "
                           f"({_first_line(err)}); try a smaller IVF/PQ or 'Flat'") from err
    return faiss.index_gpu_to_cpu(work) if work is not index else index


def build_chunked(dim: int, factory: str, sample: np.ndarray, chunks: Iterable[np.ndarray], count: int,
                  device: str = "auto") -> Any:
    """Like `build`, with bounded memory: train on `sample`, then add `chunks` (`count` vectors in all) in order."""
    faiss = _faiss()
    index = make_index(dim, factory)
    check_trainable(index, factory, count)
    work = _to_gpu(index) if use_gpu(device) else index
    try:
        if not work.is_trained:
            work.train(np.ascontiguousarray(sample, dtype=np.float32))
        for chunk in chunks:
            work.add(np.ascontiguousarray(chunk, dtype=np.float32))
    except RuntimeError as err:
        raise InvalidInput(f"faiss could not train index {factory!r} on {len(sample)} vectors "
                           f"({_first_line(err)}); try a smaller IVF/PQ or 'Flat'") from err
    return faiss.index_gpu_to_cpu(work) if work is not index else index


@cache
def _gpu_resources() -> Any:
    return _faiss().StandardGpuResources()


def _to_gpu(index: Any) -> Any:
    """A GPU copy of `index`, or `index` itself for types faiss-gpu lacks (e.g. HNSW)."""
    try:
        return _faiss().index_cpu_to_gpu(_gpu_resources(), 0, index)
    except (RuntimeError, AttributeError) as err:
        log.info("index type %s stays on the CPU (%s)", type(index).__name__, _first_line(err))
        return index


def write(index: Any, path: Path) -> None:
    """Write `index` through a Python file, so a full disk raises OSError(ENOSPC) naming `path` (faiss' own
    file writer only says "write error")."""
    faiss = _faiss()
    if not hasattr(faiss, "PyCallbackIOWriter"):  # older faiss builds
        faiss.write_index(index, str(path))
        return
    from evdsearch.diskspace import naming

    with naming(path), open(path, "wb") as handle:
        faiss.write_index(index, faiss.PyCallbackIOWriter(handle.write))


def _mmap_flags() -> list[int]:
    faiss = _faiss()
    return [getattr(faiss, name) for name in ("IO_FLAG_MMAP_IFC", "IO_FLAG_MMAP") if hasattr(faiss, name)]


def read(path: Path, mmap: bool = True) -> Any:
    """Read an index, memory-mapped where this faiss and index type allow, else into memory."""
    faiss = _faiss()
    flags = _mmap_flags() if mmap else []
    with open(path, "rb") as handle:
        is_ivf = handle.read(2) == b"Iw"  # IVF fourccs start "Iw": their lists map with IO_FLAG_MMAP
    if is_ivf:
        flags.reverse()
    for flag in [*flags, 0]:
        try:
            index = faiss.read_index(str(path), flag)
            if flag == 0 and flags:  # said once per open: an index bigger than RAM would not fit this way
                log.warning("faiss index %s could not be memory-mapped; it was read whole into memory", path)
            return index
        except RuntimeError as err:
            if flag == 0:
                raise IncompatibleArtifact(f"cannot read faiss index {path}: {_first_line(err)}") from err
            log.debug("faiss read with flag %#x failed (%s); trying the next way", flag, _first_line(err))
    raise AssertionError("unreachable")


def set_search_params(index: Any, nprobe: int, ef_search: int) -> None:
    """IVF: lists probed per query; HNSW: candidate list size. Other index types ignore them."""
    faiss = _faiss()
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = max(1, min(nprobe, ivf.nlist))
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = max(1, ef_search)


def on_gpu(index: Any) -> bool:
    """Whether `index` lives on a GPU (GPU indexes are not thread-safe, not even for search)."""
    gpu_index = getattr(_faiss(), "GpuIndex", None)
    return gpu_index is not None and isinstance(index, gpu_index)


def search_lock(index: Any) -> Any:
    """A lock that serialises searches of a GPU index; a no-op context for CPU ones (safe to share)."""
    import contextlib
    import threading

    return threading.Lock() if on_gpu(index) else contextlib.nullcontext()


def for_search(index: Any, device: str = "auto") -> Any:
    """The index to query: a GPU copy when faiss-gpu can serve this type, else the (mmapped) CPU index."""
    return _to_gpu(index) if use_gpu(device) else index
