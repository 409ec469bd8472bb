"""The knowledge base of entity visual descriptions: an LMDB folder, read-only and lock-free when serving.

Layout: sub-database `entities` maps a normalised name to JSON {"name", "descriptions": [...]},
descriptions kept sorted best first (`rank_key`: measured evidence, else score; ties in import order),
so `get` is one read;
sub-database `meta` holds the format and running counts, so `stats` needs no scan;
sub-database `calibration` maps a normalised name to JSON {"alpha", "method", "evidence", ...}: the
fusion weight `evdsearch kb calibrate` chose for the entity (see `EntityWeight`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lmdb

from evdsearch.errors import IncompatibleArtifact, NotFound, UserError
from evdsearch.indexer.entity_names import NORMALIZER_VERSION, normalize_entity
from evdsearch.indexer.kb_records import EntityWeight, ImportReport, KBRecord, KBStats, validate_record
from evdsearch.search_api import Description
from evdsearch.versioned import current_version

__all__ = ["Description", "EntityWeight", "ImportReport", "KBStats", "KnowledgeBase", "normalize_entity", "rank_key"]

FORMAT_VERSION = 1
DEFAULT_MAP_SIZE = 1 << 30  # 1 GiB of address space up front; LMDB files only grow as written
_ENTITIES, _META, _CALIBRATION = b"entities", b"meta", b"calibration"
_FORMAT_KEY, _STATS_KEY = b"format", b"stats"


def rank_key(description: Any) -> tuple[int, float]:
    """Sort key, best first: descriptions with measured evidence by it, then the rest by imported score.
    Takes a Description or its stored dict."""
    if isinstance(description, dict):
        evidence, score = description.get("evidence"), description["score"]
    else:
        evidence, score = getattr(description, "evidence", None), description.score
    return (0, -evidence) if evidence is not None else (1, -score)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class KnowledgeBase:
    """Entity → ranked visual descriptions. Open read-only to serve; writable only to import.

    Read-only handles open with `lock=False` on the folder's current version (evdsearch.versioned):
    safe, because `kb import` writes a new version and swaps it in, never pages a reader maps.
    """

    def __init__(self, env: lmdb.Environment, path: Path, readonly: bool) -> None:
        self._env = env
        self.path = path
        self.readonly = readonly
        self._entities = env.open_db(_ENTITIES, create=not readonly)
        self._meta = env.open_db(_META, create=not readonly)
        # Older KBs have no calibration sub-database; read-only opens then simply report none.
        self._calibration = self._open_optional(_CALIBRATION)

    def _open_optional(self, name: bytes) -> Any:
        if not self.readonly:
            return self._env.open_db(name, create=True)
        with self._env.begin() as txn:
            exists = txn.get(name) is not None  # named sub-databases are keys of the main database
        return self._env.open_db(name, create=False) if exists else None

    @classmethod
    def open(cls, path: str | Path, readonly: bool = True, map_size: int = DEFAULT_MAP_SIZE) -> KnowledgeBase:
        """Open a KB folder; writable opens create it when missing."""
        path = current_version(path) if readonly else Path(path)  # readers stay on one immutable version
        if readonly and not (path / "data.mdb").is_file():
            raise NotFound(f"no knowledge base at {path} (no data.mdb); create one with "
                           f"`evdsearch kb import FILE.jsonl --kb {path}`")
        try:
            if readonly:
                env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=4)
            else:
                path.mkdir(parents=True, exist_ok=True)
                env = lmdb.open(str(path), map_size=map_size, max_dbs=4)
        except lmdb.Error as err:  # e.g. already open in this process, permissions, a file that is not LMDB
            raise IncompatibleArtifact(f"cannot open the knowledge base at {path}: {err}") from err
        try:
            kb = cls(env, path, readonly)
            kb._check_format()
        except (lmdb.Error, UserError) as err:
            env.close()
            if isinstance(err, UserError):
                raise
            raise IncompatibleArtifact(f"{path} is not an evdsearch knowledge base ({err})") from err
        return kb

    def _check_format(self) -> None:
        with self._env.begin(db=self._meta) as txn:
            raw = txn.get(_FORMAT_KEY)
        if raw is None:
            if self.readonly:
                raise IncompatibleArtifact(f"{self.path} is not an evdsearch knowledge base (no format record)")
            return
        fmt = json.loads(raw)
        if fmt != {"format_version": FORMAT_VERSION, "normalizer": NORMALIZER_VERSION}:
            raise IncompatibleArtifact(
                f"knowledge base {self.path} has format {fmt}, this evdsearch reads format_version "
                f"{FORMAT_VERSION} with normalizer {NORMALIZER_VERSION}; re-import it (`evdsearch kb import`)"
            )

    def close(self) -> None:
        self._env.close()

    def copy_to(self, folder: str | Path) -> None:
        """Write a compacted copy of this KB into the empty folder `folder` (a consistent snapshot)."""
        self._env.copy(str(folder), compact=True)

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _entry(self, entity: str) -> dict[str, Any] | None:
        with self._env.begin(db=self._entities) as txn:
            raw = txn.get(entity.encode("utf-8"))
        return json.loads(raw) if raw is not None else None

    def get(self, entity: str) -> list[Description]:
        """Descriptions of an entity (any spelling `normalize_entity` maps to it), best first; [] if unknown."""
        entry = self._entry(normalize_entity(entity))
        return [Description(**d) for d in entry["descriptions"]] if entry else []

    def __contains__(self, entity: str) -> bool:
        return self._entry(normalize_entity(entity)) is not None

    def display_name(self, entity: str) -> str | None:
        """The entity's name as first imported (e.g. "Stop Sign" for "stop signs"); None if unknown."""
        entry = self._entry(normalize_entity(entity))
        return entry["name"] if entry else None

    def entities(self) -> list[str]:
        """All normalised entity names, sorted."""
        with self._env.begin(db=self._entities) as txn:
            return [key.decode("utf-8") for key in txn.cursor().iternext(keys=True, values=False)]

    def display_names(self) -> dict[str, str]:
        """Normalised name → display name, for every entity."""
        return {key: entry["name"] for key, entry in self._iter_entries()}

    def _iter_entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._env.begin(db=self._entities) as txn:
            for key, raw in txn.cursor():
                yield key.decode("utf-8"), json.loads(raw)

    def __len__(self) -> int:
        return self.stats().entities

    def stats(self) -> KBStats:
        """Entity and description counts, per source and per kind."""
        with self._env.begin(db=self._meta) as txn:
            raw = txn.get(_STATS_KEY)
        return KBStats(**json.loads(raw)) if raw else KBStats(entities=0, descriptions=0)

    def weights(self) -> dict[str, EntityWeight]:
        """Calibrated fusion weight per normalised entity name; {} when the KB was never calibrated."""
        if self._calibration is None:
            return {}
        with self._env.begin(db=self._calibration) as txn:
            return {key.decode("utf-8"): EntityWeight(**json.loads(raw)) for key, raw in txn.cursor()}

    def weight(self, entity: str) -> EntityWeight | None:
        """The calibrated weight of one entity (any spelling), or None."""
        if self._calibration is None:
            return None
        with self._env.begin(db=self._calibration) as txn:
            raw = txn.get(normalize_entity(entity).encode("utf-8"))
        return EntityWeight(**json.loads(raw)) if raw is not None else None

    def set_weights(self, weights: dict[str, EntityWeight], info: dict[str, Any] | None = None) -> int:
        """Replace every calibrated weight in ONE transaction (all or nothing); returns how many were written.

        Keys must be entities of this KB; `info` (how the calibration ran) is kept in `meta`.
        """
        if self.readonly:
            raise UserError(f"knowledge base {self.path} is open read-only; open it with readonly=False to calibrate")
        known = set(self.entities())
        unknown = sorted(set(weights) - known)
        if unknown:
            raise UserError(f"cannot calibrate entities that are not in the knowledge base: {', '.join(unknown[:5])}")
        for name, w in weights.items():
            if not 0.0 <= w.alpha <= 1.0:
                raise UserError(f"weight of {name!r} is {w.alpha}; it must be in [0, 1]")
        with self._env.begin(write=True) as txn:
            txn.drop(self._calibration, delete=False)
            for name, w in weights.items():
                txn.put(name.encode("utf-8"), _dumps(asdict(w)), db=self._calibration)
            txn.put(b"calibration", _dumps(info or {}), db=self._meta)
        return len(weights)

    def set_evidence(self, evidence: dict[str, dict[str, float]]) -> int:
        """Store measured evidence (entity -> description text -> value) and re-rank those entities, in ONE
        transaction; descriptions not named keep none. Returns how many descriptions got a value."""
        if self.readonly:
            raise UserError(f"knowledge base {self.path} is open read-only; open it with readonly=False to rank")
        written = 0
        with self._env.begin(write=True) as txn:
            for entity, values in evidence.items():
                raw = txn.get(entity.encode("utf-8"), db=self._entities)
                if raw is None:
                    raise UserError(f"cannot rank descriptions of {entity!r}: it is not in the knowledge base")
                entry = json.loads(raw)
                for d in entry["descriptions"]:
                    d["evidence"] = round(float(values[d["text"]]), 4) if d["text"] in values else None
                    written += d["evidence"] is not None
                entry["descriptions"].sort(key=rank_key)
                txn.put(entity.encode("utf-8"), _dumps(entry), db=self._entities)
        return written

    def calibration_info(self) -> dict[str, Any]:
        """What `set_weights` recorded about the last calibration ({} when none)."""
        with self._env.begin(db=self._meta) as txn:
            raw = txn.get(b"calibration")
        return json.loads(raw) if raw else {}

    def export(self) -> Iterator[dict[str, Any]]:
        """Every description as an import record (entity, description, source, score, kind), by entity."""
        for _, entry in self._iter_entries():
            for desc in entry["descriptions"]:
                yield {"entity": entry["name"], "description": desc["text"], "source": desc["source"],
                       "score": desc["score"], "kind": desc["kind"]}

    def import_records(self, records: Iterable[Any]) -> ImportReport:
        """Validate every record, then write all of them in ONE transaction: all or nothing.

        Records repeating a stored (entity, text, source) are skipped and counted as duplicates.
        """
        if self.readonly:
            raise UserError(f"knowledge base {self.path} is open read-only; open it with readonly=False to import")
        validated = [validate_record(obj, f"record {i}") for i, obj in enumerate(records, 1)]
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    return self._write(txn, validated)
            except lmdb.MapFullError:
                # The transaction was aborted; grow the map and redo the whole import.
                self._env.set_mapsize(self._env.info()["map_size"] * 2)

    def _write(self, txn: lmdb.Transaction, records: list[KBRecord]) -> ImportReport:
        entries: dict[str, dict[str, Any]] = {}
        seen: dict[str, set[tuple[str, str]]] = {}
        new_entities = added = 0
        stats = self.stats()
        sources, kinds = Counter(stats.sources), Counter(stats.kinds)
        for rec in records:
            if rec.entity not in entries:
                raw = txn.get(rec.entity.encode("utf-8"), db=self._entities)
                new_entities += raw is None
                entries[rec.entity] = json.loads(raw) if raw else {"name": rec.name, "descriptions": []}
                seen[rec.entity] = {(d["text"], d["source"]) for d in entries[rec.entity]["descriptions"]}
            if (rec.text, rec.source) in seen[rec.entity]:
                continue
            seen[rec.entity].add((rec.text, rec.source))
            entries[rec.entity]["descriptions"].append(
                asdict(Description(rec.text, rec.source, rec.score, rec.kind)))
            sources[rec.source] += 1
            kinds[rec.kind] += 1
            added += 1
        for entity, entry in entries.items():
            # Stable sort: equal keys keep import order (stored ones first).
            entry["descriptions"].sort(key=rank_key)
            txn.put(entity.encode("utf-8"), _dumps(entry), db=self._entities)
        new_stats = KBStats(stats.entities + new_entities, stats.descriptions + added, dict(sources), dict(kinds))
        txn.put(_STATS_KEY, _dumps(asdict(new_stats)), db=self._meta)
        txn.put(_FORMAT_KEY, _dumps({"format_version": FORMAT_VERSION, "normalizer": NORMALIZER_VERSION}),
                db=self._meta)
        return ImportReport(len(records), added, len(records) - added, new_entities)
