"""An LRU cache of text -> embedding in front of the CLIP text encoder, keyed by the encoder's fingerprint."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class CacheStats:
    """What the cache has done since it was made (a hot reload that keeps the CLIP keeps the cache)."""

    hits: int  # texts answered from the cache
    misses: int  # texts that went to the encoder
    size: int  # entries held now
    capacity: int  # most entries held (0: the cache is off)


class CachedTextEncoder:
    """A LoadedClip (or ClipWithOnnxText) whose `encode_texts` remembers recent texts; everything else is the clip's.

    Keys carry the encoder's fingerprint (weights checksum + text precision, e.g. an int8 tower), so a
    cache shared across a model swap never serves another model's vectors. Misses of one call are
    encoded together in one encoder call. Thread-safe; the cache lock is not held while encoding.
    With `serialize`, encoder calls run one at a time: under a thread budget each call already uses
    every budgeted core, so concurrent RPC threads would only multiply the pools.
    """

    def __init__(self, clip: Any, capacity: int, serialize: bool = False) -> None:
        self._clip = clip
        self.capacity = max(0, int(capacity))
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock() if serialize else None
        self._hits = 0
        self._misses = 0

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 (len(texts), dim), as the wrapped encoder returns them."""
        if self.capacity == 0 or not texts:
            with self._lock:
                self._misses += len(texts)
            return self._encode(texts)
        fingerprint = f"{self._clip.identity.fingerprint}:{getattr(self._clip, 'text_precision', 'fp32')}"
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._entries.get((fingerprint, text))
                if vector is not None:
                    self._entries.move_to_end((fingerprint, text))
                    found[text] = vector
            missing = list(dict.fromkeys(text for text in texts if text not in found))
            self._hits += len(texts) - sum(text not in found for text in texts)
            self._misses += sum(text not in found for text in texts)
        if missing:
            encoded = self._encode(missing)
            with self._lock:
                for text, vector in zip(missing, encoded, strict=True):
                    found[text] = vector
                    self._entries[(fingerprint, text)] = vector
                    self._entries.move_to_end((fingerprint, text))
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
        return np.stack([found[text] for text in texts]).astype(np.float32, copy=False)

    def wraps(self, clip: Any) -> bool:
        """Whether this cache stands in front of `clip` (the same loaded model object)."""
        return self._clip is clip

    def contains(self, text: str) -> bool:
        """Whether `text` would be answered from the cache now (not counted as a hit)."""
        key = (f"{self._clip.identity.fingerprint}:{getattr(self._clip, 'text_precision', 'fp32')}", text)
        with self._lock:
            return self.capacity > 0 and key in self._entries

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._encode_lock is None:
            return self._clip.encode_texts(texts)
        with self._encode_lock:
            return self._clip.encode_texts(texts)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self.capacity)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clip, name)
