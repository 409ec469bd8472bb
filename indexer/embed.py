"""Batched image embedding: files decoded and preprocessed in a thread pool, encoded by CLIP batch by batch."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.clip_models import LoadedClip

PREFETCH_BATCHES = 2  # batches decoded ahead of the encoder; bounds memory while keeping it fed


@dataclass
class EmbedResult:
    """Embeddings of the readable images, and why the others were skipped."""

    embeddings: np.ndarray  # float32 (len(kept), dim), L2-normalised
    kept: list[int] = field(default_factory=list)  # positions in the input of each embedding row
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (position, reason) of unreadable files


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise unit length, float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def decode_image(path: Path, preprocess: Any) -> Any:
    """Open, fully decode (so truncated files fail here) and preprocess one image, as CLIP's eval does."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return preprocess(image.convert("RGB"))


def _decode_or_reason(path: Path, preprocess: Any) -> Any:
    try:
        return decode_image(path, preprocess)
    except Exception as err:  # any unreadable file (missing, corrupt, truncated, bomb) is skipped, not fatal
        return f"{type(err).__name__}: {err}"


def encode_batch(clip: LoadedClip, tensors: list[Any]) -> np.ndarray:
    """One forward pass of the image tower over preprocessed tensors."""
    import torch

    batch = torch.stack(tensors).to(clip.device)
    with torch.inference_mode():
        feats = clip.model.encode_image(batch, normalize=True)
    return l2_normalize(feats.float().cpu().numpy())


def _batches(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def embed_images(clip: LoadedClip, paths: Sequence[Path], batch_size: int = 64, workers: int = 0,
                 progress: bool = True) -> EmbedResult:
    """Embed image files in order; unreadable ones are listed in `skipped` instead of failing the run."""
    from tqdm import tqdm

    workers = workers or min(8, os.cpu_count() or 1)
    out = np.empty((len(paths), clip.embed_dim), dtype=np.float32)
    result = EmbedResult(out)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    pending: deque[tuple[range, list[Future]]] = deque()
    batches = _batches(len(paths), batch_size)
    bar = tqdm(total=len(paths), unit="img", desc="embedding", disable=not progress)
    try:
        while True:
            while len(pending) < PREFETCH_BATCHES and (rows := next(batches, None)) is not None:
                pending.append((rows, [pool.submit(_decode_or_reason, paths[i], clip.preprocess) for i in rows]))
            if not pending:
                break
            rows, futures = pending.popleft()
            tensors = []
            for i, future in zip(rows, futures, strict=True):
                decoded = future.result()
                if isinstance(decoded, str):
                    result.skipped.append((i, decoded))
                else:
                    result.kept.append(i)
                    tensors.append(decoded)
            if tensors:
                start = len(result.kept) - len(tensors)
                out[start : len(result.kept)] = encode_batch(clip, tensors)
            bar.update(len(rows))
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)  # an interrupted run stops decoding at once
    result.embeddings = out[: len(result.kept)]
    return result
