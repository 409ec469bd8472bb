"""Filters of one index version turned into row selections (bound to its schema, evaluated once, cached)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evdsearch.filter_expr import Node, to_text
from evdsearch.indexer.filter_eval import bind, evaluate
from evdsearch.indexer.metadata import MetadataTable

CACHE_SIZE = 64  # selections kept per index version (a selection costs count / 8 bytes and one evaluation)


@dataclass(frozen=True)
class Selection:
    """The live rows a filter keeps."""

    text: str  # the filter's canonical text
    tree: Node  # the tree bound to the schema (values typed; what a Milvus expression is made from)
    rows: np.ndarray  # bool (count,): kept and not deleted

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.rows))


def live_rows(items_path: Path, count: int, deleted: int) -> np.ndarray:
    """bool (count,): rows not tombstoned by `index delete` (found by a byte scan, only when some were)."""
    live = np.ones(count, dtype=bool)
    if not deleted:
        return live
    import json

    with open(items_path, "rb") as handle:
        for line in handle:
            if b'"deleted"' in line:
                row = json.loads(line)
                if row.get("deleted"):
                    live[int(row["id"])] = False
    return live


class Selector:
    """Selections of one index version; thread-safe, with an LRU cache keyed by the canonical filter text."""

    def __init__(self, table: MetadataTable, items_path: Path, deleted: int) -> None:
        self.table = table
        self._items_path, self._deleted = items_path, deleted
        self._live: np.ndarray | None = None
        self._cache: OrderedDict[str, Selection] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def live(self) -> np.ndarray:
        if self._live is None:
            self._live = live_rows(self._items_path, self.table.count, self._deleted)
        return self._live

    def select(self, tree: Node) -> Selection:
        """The selection of a parsed filter; InvalidInput for an unknown field or a value of the wrong type."""
        key = to_text(tree)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        bound = bind(tree, self.table.schema)
        selection = Selection(key, bound, evaluate(bound, self.table) & self.live)
        with self._lock:
            self._cache[key] = selection
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return selection
