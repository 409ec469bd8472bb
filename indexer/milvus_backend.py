"""The Milvus backend: vectors searched in a Milvus collection (Milvus Lite file or server); the folder keeps the rest.

The index folder still holds manifest.json (naming uri + collection), items.jsonl and embeddings.npy
(per-hit exact scores); Milvus holds (id = row, vector, uri). pymilvus is imported only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput, NotFound, UserError
from evdsearch.indexer.manifest import EMBEDDINGS_FILE, ITEMS_FILE, Manifest, check_data_files
from evdsearch.indexer.milvus_link import MilvusLink

DEFAULT_COLLECTION = "evdsearch"
INDEX_TYPES = ("FLAT", "IVF_FLAT", "HNSW")  # --milvus-index choices; FLAT is exact (FAISS Flat's twin)
INSERT_CHUNK = 2048  # rows per insert call: bounded request size
URI_MAX = 4096  # longest uri the collection stores
RECONNECT_OPTIONS = {"grpc.initial_reconnect_backoff_ms": 200, "grpc.max_reconnect_backoff_ms": 1000}


@dataclass
class MilvusTarget:
    """Where a Milvus-backed index keeps its vectors."""

    uri: str  # Milvus Lite file (*.db, made absolute) or server address (http://host:19530)
    collection: str = DEFAULT_COLLECTION  # collection name
    index_type: str = "FLAT"  # FLAT (exact) | IVF_FLAT | HNSW, always metric IP

    def to_backend(self) -> dict[str, str]:
        """The manifest's "backend" object."""
        return {"type": "milvus", "uri": self.uri, "collection": self.collection, "index_type": self.index_type}


def normalise_uri(uri: str) -> str:
    """A Lite file path is made absolute (a server reads the folder from anywhere); addresses pass as given."""
    if "://" in uri:
        return uri
    if not uri.endswith(".db"):
        raise InvalidInput(f"--milvus-uri {uri!r} is neither a Milvus Lite file (*.db) nor an address "
                           f"(http://host:19530)")
    return str(Path(uri).expanduser().resolve())


@cache
def client(uri: str) -> Any:
    """One MilvusClient per URI per process (a Lite file is served by one embedded server)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as err:
        raise UserError("the Milvus backend needs pymilvus (and milvus-lite for a .db file): "
                        "pip install 'evdsearch[milvus]'") from err
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    import logging

    # pymilvus logs a traceback per failed call and per failed reconnect; MilvusLink logs one line when the
    # server goes away and one when it is back
    logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
    logging.getLogger("pymilvus.client.connection_manager").setLevel(logging.ERROR)
    try:  # reconnect within a second once a stopped server is back (gRPC's own backoff grows to minutes)
        return MilvusClient(uri, grpc_options=RECONNECT_OPTIONS)
    except Exception as err:  # connection refused, lite file locked, ...: one line, not a traceback
        raise NotFound(f"cannot open Milvus at {uri}: {type(err).__name__}: {err}") from err


def create_collection(target: MilvusTarget, dim: int, replace: bool) -> Any:
    """An empty IP collection (id INT64 primary = row, vector, uri); an existing one is refused unless `replace`."""
    from pymilvus import DataType, MilvusClient

    if target.index_type not in INDEX_TYPES:
        raise InvalidInput(f"--milvus-index must be one of {', '.join(INDEX_TYPES)}, not {target.index_type!r}")
    mc = client(target.uri)
    if mc.has_collection(target.collection):
        if not replace:
            raise UserError(f"Milvus collection {target.collection!r} already exists at {target.uri}; "
                            f"pass --force to replace it or --collection to choose another")
        mc.drop_collection(target.collection)
    # metadata fields go to the dynamic field (keys m_<name>, see milvus_filter): `index add` may bring new ones
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("uri", DataType.VARCHAR, max_length=URI_MAX)
    params = mc.prepare_index_params()
    extra = {"nlist": 128} if target.index_type == "IVF_FLAT" else {"M": 16, "efConstruction": 200} \
        if target.index_type == "HNSW" else {}
    params.add_index(field_name="vector", index_type=target.index_type, metric_type="IP", params=extra)
    mc.create_collection(target.collection, schema=schema)
    # Milvus Lite does not implement AllocTimestamp, which pymilvus's wait for the index calls (its embedded
    # server then logs a traceback); an index on an empty collection is ready at once, so Lite skips the wait.
    mc.create_index(target.collection, params, sync="://" in target.uri)
    mc.load_collection(target.collection)
    return mc


def upsert_rows(target: MilvusTarget, rows: np.ndarray, vectors: np.ndarray, uris: list[str],
                metadata: list[dict[str, Any]] | None = None) -> None:
    """Write (row, vector, uri, metadata as m_<name> keys) into the collection, chunk by chunk; existing rows
    are replaced. `metadata`: one dict per row, values as the metadata columns store them."""
    from evdsearch.indexer.milvus_filter import key

    mc = client(target.uri)
    for start in range(0, len(rows), INSERT_CHUNK):
        stop = min(start + INSERT_CHUNK, len(rows))
        mc.upsert(target.collection, [{"id": int(rows[i]), "vector": np.asarray(vectors[i], np.float32).tolist(),
                                       "uri": uris[i], **{key(name): value for name, value in
                                                          (metadata[i] if metadata else {}).items()}}
                                      for i in range(start, stop)])


def delete_rows(target: MilvusTarget, rows: list[int]) -> None:
    if rows:
        client(target.uri).delete(target.collection, ids=[int(r) for r in rows])


def fill_from_folder(target: MilvusTarget, folder: Path, replace: bool) -> None:
    """Create the collection and load every row of a written folder (embeddings.npy + items.jsonl) into it."""
    from evdsearch.indexer.items import ItemStore
    from evdsearch.indexer.metadata import MetadataTable

    embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")
    items = ItemStore(folder / ITEMS_FILE)
    metadata = MetadataTable.open(folder, len(embeddings)).rows()
    create_collection(target, embeddings.shape[1], replace)
    for start in range(0, len(embeddings), INSERT_CHUNK):
        rows = np.arange(start, min(start + INSERT_CHUNK, len(embeddings)))
        upsert_rows(target, rows, embeddings[rows], [items[int(r)]["uri"] for r in rows],
                    [metadata[int(r)] for r in rows])
    client(target.uri).load_collection(target.collection)
    items.close()


def live_count(target: MilvusTarget) -> int:
    """Rows the collection holds now."""
    mc = client(target.uri)
    result = mc.query(target.collection, filter="", output_fields=["count(*)"])
    return int(result[0]["count(*)"])


def target_of(manifest: Manifest, uri: str | None = None) -> MilvusTarget:
    backend = manifest.backend
    return MilvusTarget(normalise_uri(uri) if uri else str(backend["uri"]),
                        str(backend.get("collection", DEFAULT_COLLECTION)), str(backend.get("index_type", "FLAT")))


def open_milvus_store(directory: Path, manifest: Manifest, uri: str | None = None, verify: bool = False) -> Any:
    """An `IndexStore` whose search goes to Milvus; items and embeddings come from the folder as for FAISS."""
    from evdsearch.indexer.items import ItemStore

    check_data_files(directory, manifest, verify, needed=(EMBEDDINGS_FILE, ITEMS_FILE))  # no index.faiss here
    target = target_of(manifest, uri)
    link = MilvusLink(target.uri, target.collection, client)
    if not link.call(lambda mc, timeout: mc.has_collection(target.collection, timeout=timeout)):
        raise NotFound(f"index {directory} names Milvus collection {target.collection!r} at {target.uri}, "
                       f"which does not exist; rebuild with `evdsearch index ... --backend milvus`")
    link.call(lambda mc, timeout: mc.load_collection(target.collection, timeout=timeout))
    embeddings = np.load(directory / EMBEDDINGS_FILE, mmap_mode="r")
    return MilvusStore(directory, manifest, target, embeddings, ItemStore(directory / ITEMS_FILE), link)


class MilvusStore:
    """Search through Milvus; everything else (items, embeddings, metadata, model check) as `IndexStore` does it."""

    def __init__(self, directory: Path, manifest: Manifest, target: MilvusTarget, embeddings: np.ndarray,
                 items: Any, link: MilvusLink | None = None) -> None:
        from evdsearch.indexer.store import IndexStore

        self._store = IndexStore(directory, manifest, None, embeddings, items)
        self.target = target  # where the vectors are searched
        self.link = link or MilvusLink(target.uri, target.collection, client)  # timeouts, fail fast, reconnects
        self.directory, self.manifest, self.count, self.dim = directory, manifest, manifest.count, manifest.dim
        self.embeddings, self.items, self.index = embeddings, items, None
        self.metadata = self._store.metadata  # the folder's metadata columns (shown on hits, counted for filters)

    @property
    def live_count(self) -> int:
        return self._store.live_count

    def select(self, tree: Any) -> Any:
        """The rows a filter keeps, counted from the folder's metadata; Milvus itself filters natively."""
        return self._store.select(tree)

    def _search(self, vectors: np.ndarray, limit: int, expression: str = "") -> tuple[np.ndarray, np.ndarray]:
        params: dict[str, Any] = {"metric_type": "IP"}
        if self.target.index_type == "HNSW":
            params["params"] = {"ef": max(64, limit)}
        results = self.link.call(lambda mc, timeout: mc.search(
            self.target.collection, data=vectors.tolist(), limit=limit, filter=expression, search_params=params,
            output_fields=[], timeout=timeout))
        scores = np.full((len(vectors), limit), -np.inf, dtype=np.float32)
        ids = np.full((len(vectors), limit), -1, dtype=np.int64)
        for row, hits in enumerate(results):
            # Rows past the folder's count were upserted by an update whose folder swap did not happen
            # (a crash between the two); the rerun repeats them, until then they are not results.
            found = [hit for hit in hits if 0 <= int(hit["id"]) < self.count][:limit]
            for col, hit in enumerate(found):
                ids[row, col], scores[row, col] = int(hit["id"]), float(hit["distance"])
        return scores, ids

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k inner products per row, best first; (scores, ids) padded with -inf / -1 like FAISS."""
        vectors = self._store._checked(vectors, k)
        return self._search(vectors, min(k, self.count))

    def search_page(self, vectors: np.ndarray, depth: int, selection: Any = None) -> Any:
        """The top `depth` per query row with Milvus's native filter; HNSW rankings in buckets (as for FAISS)."""
        from evdsearch.indexer.filtered_search import Page, chained
        from evdsearch.indexer.milvus_filter import milvus_expression

        vectors = self._store._checked(vectors, depth)
        depth = min(depth, max(1, self.live_count))
        expression = milvus_expression(selection.tree) if selection is not None else ""
        plan = f"milvus {self.target.index_type}" + (f", filter {expression}" if expression else "")
        if self.target.index_type != "HNSW":
            return Page(*self._search(vectors, depth, expression), plan)
        return Page(*chained(lambda k: self._search(vectors, k, expression), depth, 64, len(vectors)), plan)

    def probe(self) -> str | None:
        """None while Milvus answers; else why not (the server's health watch reports NOT_SERVING)."""
        return self.link.probe()

    def item(self, id: int) -> dict[str, Any]:
        return self._store.item(id)

    def check_model(self, identity: Any) -> None:
        self._store.check_model(identity)
