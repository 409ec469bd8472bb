"""Near-duplicate groups of an index: images whose embeddings' cosine similarity reaches a threshold, joined
transitively (connected components), each image's candidates taken from its nearest neighbours in the index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput

BATCH = 1024  # query rows per index search


@dataclass
class DuplicateGroup:
    """Images that are near-duplicates of each other (directly or through a chain of near-duplicates)."""

    ids: list[int]  # index ids, ascending
    min_score: float  # lowest similarity of the pairs that joined the group
    pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (id, id, similarity) at or above threshold


class _Components:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, a: int) -> int:
        root = a
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while a != root:  # path compression
            self.parent[a], a = root, self.parent.get(a, a)
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicates(store: Any, threshold: float, neighbours: int = 16) -> list[DuplicateGroup]:
    """Groups of live images whose similarity to another member is at least `threshold`, largest first.

    Each image is compared with its `neighbours` nearest images (exact for Flat indexes): a group of more
    than `neighbours` + 1 mutually near images is still found whole through its members' own neighbours.
    """
    if not -1.0 <= threshold <= 1.0:
        raise InvalidInput(f"--threshold is a cosine similarity in [-1, 1], got {threshold}")
    if neighbours < 1:
        raise InvalidInput(f"--neighbours must be at least 1, got {neighbours}")
    live = np.flatnonzero(store.selector.live)
    components = _Components()
    pairs: dict[tuple[int, int], float] = {}
    for start in range(0, len(live), BATCH):
        rows = live[start:start + BATCH]
        page = store.search_page(np.asarray(store.embeddings[rows], dtype=np.float32), neighbours + 1)
        for row, scores, ids in zip(rows.tolist(), page.scores, page.ids, strict=True):
            for score, other in zip(scores.tolist(), ids.tolist(), strict=True):
                if other >= 0 and other != row and score >= threshold:
                    pairs[(min(row, other), max(row, other))] = score
                    components.union(row, other)
    members: dict[int, list[int]] = {}
    for a, b in pairs:
        for node in (a, b):
            members.setdefault(components.find(node), [])
    for node in {n for pair in pairs for n in pair}:
        members[components.find(node)].append(node)
    groups = []
    for root, ids in members.items():
        inside = [(a, b, s) for (a, b), s in sorted(pairs.items()) if components.find(a) == root]
        groups.append(DuplicateGroup(sorted(ids), min(s for _, _, s in inside), inside))
    return sorted(groups, key=lambda g: (-len(g.ids), g.ids[0]))
