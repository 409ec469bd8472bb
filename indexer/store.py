"""`IndexStore`: a built index folder opened for search (index and embeddings memory-mapped, read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.clip_models import ClipIdentity
from evdsearch.errors import IncompatibleArtifact, InvalidInput, NotFound
from evdsearch.filter_expr import Node
from evdsearch.indexer import faiss_backend
from evdsearch.indexer.filtered_search import FilteredSearchConfig, Page, search_page
from evdsearch.indexer.items import ItemStore
from evdsearch.indexer.manifest import (
    EMBEDDINGS_FILE,
    INDEX_FILE,
    ITEMS_FILE,
    Manifest,
    check_data_files,
    read_manifest,
)
from evdsearch.indexer.metadata import MetadataTable
from evdsearch.indexer.selection import Selection, Selector
from evdsearch.integrity import check_sums
from evdsearch.versioned import current_version

DEFAULT_NPROBE = 32  # IVF lists probed per query: good recall for IVF1024 at a fraction of Flat's cost
DEFAULT_EF_SEARCH = 64  # HNSW candidate list size per query


class IndexStore:
    """One index folder: FAISS index, per-row embeddings and items, plus the manifest that built them.

    Searching is thread-safe (read-only FAISS search on CPU; serialised by a lock on GPU, where FAISS
    is not thread-safe); search parameters are fixed at `open`.
    """

    def __init__(self, directory: Path, manifest: Manifest, index: Any, embeddings: np.ndarray,
                 items: Sequence[dict[str, Any]], nprobe: int = DEFAULT_NPROBE,
                 ef_search: int = DEFAULT_EF_SEARCH) -> None:
        self.directory = directory
        self.manifest = manifest  # manifest.json, typed (`.to_json()` gives the dict)
        self.count: int = manifest.count
        self.dim: int = manifest.dim
        self.index = index  # FAISS index (CPU, memory-mapped where possible; or a GPU copy)
        self.embeddings = embeddings  # float32 (count, dim), memory-mapped, read-only
        self.items = items  # items.jsonl rows: {"id", "uri", "captions"}, id = row (parsed on access)
        self._search_lock = faiss_backend.search_lock(index)  # GPU FAISS: one search at a time
        self.nprobe, self.ef_search = nprobe, ef_search  # what a filtered / paged search starts from
        self.metadata = MetadataTable.open(directory, manifest.count)  # empty for folders without metadata/
        self.selector = Selector(self.metadata, directory / ITEMS_FILE, manifest.deleted)
        self.filtered_config = FilteredSearchConfig()  # when a filter is answered exactly

    @classmethod
    def open(cls, directory: str | Path, nprobe: int = DEFAULT_NPROBE, ef_search: int = DEFAULT_EF_SEARCH,
             device: str = "auto", verify: bool = False, backend: str | None = None,
             backend_uri: str | None = None) -> IndexStore:
        """Open an index folder; `verify` first re-hashes every file against the version's SHA256SUMS (an index
        written before those exist: its data files against the manifest's checksums; reads every byte once).

        `backend` (faiss | milvus) refuses a folder of the other backend; `backend_uri` overrides the
        Milvus address the manifest names (Milvus-backed folders only).
        """
        directory = current_version(directory)  # the version folder, fixed for this store's life
        summed = verify and check_sums(directory, "index") is not None  # damage is named before anything parses
        manifest = read_manifest(directory)
        if backend and backend != manifest.backend_type:
            raise IncompatibleArtifact(f"index {directory} is a {manifest.backend_type} index, not {backend}; "
                                       f"drop --backend or point --index at a {backend} index")
        if backend_uri and manifest.backend_type != "milvus":
            raise InvalidInput(f"--milvus-uri only applies to a Milvus-backed index; {directory} is "
                               f"{manifest.backend_type}")
        if manifest.backend_type == "milvus":
            from evdsearch.indexer.milvus_backend import open_milvus_store

            return open_milvus_store(directory, manifest, uri=backend_uri, verify=verify and not summed)
        check_data_files(directory, manifest, verify and not summed)
        index = faiss_backend.read(directory / INDEX_FILE)
        faiss_backend.set_search_params(index, nprobe, ef_search)
        embeddings = np.load(directory / EMBEDDINGS_FILE, mmap_mode="r")
        if embeddings.dtype != np.float32:
            raise IncompatibleArtifact(f"index {directory}: {EMBEDDINGS_FILE} holds {embeddings.dtype}, not float32; "
                                       f"rebuild it with `evdsearch index ... --force`")
        items = ItemStore(directory / ITEMS_FILE)
        expected = (manifest.count, manifest.dim)
        # Tombstoned rows (index delete) stay in items and embeddings but not in the index.
        found = {"index": (index.ntotal + manifest.deleted, index.d), "embeddings": embeddings.shape, "items": (len(items), expected[1])}
        for what, shape in found.items():
            if tuple(shape) != expected:
                raise IncompatibleArtifact(f"index {directory}: {what} holds {tuple(shape)} (count, dim) but the "
                                           f"manifest says {expected}; rebuild it with `evdsearch index ... --force`")
        return cls(directory, manifest, faiss_backend.for_search(index, device), embeddings, items, nprobe,
                   ef_search)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k inner-product search for each row of `vectors` (n, dim), best first.

        Returns (scores float32 (n, k'), ids int64 (n, k')) with k' = min(k, count). Approximate
        indexes (IVF, HNSW) may find fewer than k' hits: those slots hold id -1 and score -inf,
        and callers must drop them.
        """
        vectors = self._checked(vectors, k)
        with self._search_lock:
            scores, ids = self.index.search(vectors, max(1, min(k, self.count - self.manifest.deleted)))
        scores[ids < 0] = -np.inf
        return scores, ids

    @property
    def live_count(self) -> int:
        """Searchable rows (tombstones excluded)."""
        return self.count - self.manifest.deleted

    def select(self, tree: Node) -> Selection:
        """The live rows a parsed filter keeps (bound to this index's schema; cached)."""
        return self.selector.select(tree)

    def search_page(self, vectors: np.ndarray, depth: int, selection: Selection | None = None) -> Page:
        """The top `depth` per query row, pages stable across depths (see indexer.filtered_search), over every
        live row or the rows of `selection`."""
        vectors = self._checked(vectors, depth)
        with self._search_lock:
            return search_page(self.index, self.embeddings, vectors, min(depth, self.live_count), self.nprobe,
                               self.ef_search, None if selection is None else selection.rows, self.live_count,
                               self.filtered_config)

    def _checked(self, vectors: np.ndarray, k: int) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidInput(f"query vectors must have shape (n, {self.dim}), got {vectors.shape}")
        if k < 1:
            raise InvalidInput(f"k must be at least 1, got {k}")
        return vectors

    def item(self, id: int) -> dict[str, Any]:
        """The items.jsonl row {"id", "uri", "captions"} of an index id."""
        if not 0 <= id < self.count:
            raise NotFound(f"no item {id} in index {self.directory} (ids are 0..{self.count - 1})")
        return self.items[id]

    def check_model(self, identity: ClipIdentity) -> None:
        """Refuse a CLIP other than the one that built the index: its embeddings would not compare."""
        model, fingerprint = self.manifest.model, self.manifest.fingerprint
        if identity.fingerprint != fingerprint or identity.embed_dim != self.dim:
            raise IncompatibleArtifact(
                f"index was built with model {model} (fingerprint {fingerprint[:16]}, dim {self.dim}) but the "
                f"engine loaded {identity.model} (fingerprint {identity.fingerprint[:16]}, dim {identity.embed_dim}); "
                f"re-index or pass the matching --model"
            )
