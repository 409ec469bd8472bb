"""`verify_path`: check an index folder or a knowledge base end to end; the first problem is raised."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evdsearch.errors import IncompatibleArtifact, NotFound
from evdsearch.integrity import IntegrityError, check_sums, read_sums
from evdsearch.versioned import current_version, is_versioned


class VerifyFailed(IncompatibleArtifact):
    """What `verify` found wrong (the first problem only)."""


@dataclass
class VerifyReport:
    """What a successful check looked at."""

    kind: str  # "index" or "kb"
    path: Path  # the folder asked about
    version: Path  # the folder actually checked (the current version, or `path` in the old layout)
    summary: str  # one line for the CLI


def verify_path(path: str | Path) -> VerifyReport:
    """Check the index or KB at `path` (its current version); raise VerifyFailed with the first problem."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path} does not exist")
    version = current_version(path)
    if is_versioned(path) and not version.is_dir():
        raise VerifyFailed(f"{path}/current points to {version}, which does not exist")
    return verify_version(path, version)


def verify_version(path: Path, version: Path) -> VerifyReport:
    """Check one version folder of `path`: its SHA256SUMS first (so damage is named before anything parses
    it), then what it holds (FAISS loads, counts, every record parses)."""
    where = f"{path}" + (f" (version {version.name})" if version != path else "")
    kind = "index" if (version / "manifest.json").exists() else "knowledge base" \
        if (version / "data.mdb").exists() else "version"
    try:
        sums = check_sums(version, kind)
    except IntegrityError as err:
        raise VerifyFailed(str(err)) from err
    summed = (f"; SHA256SUMS match ({sums.files} file{'s' * (sums.files != 1)}, {sums.bytes / 2**20:,.1f} MiB "
              f"read)" if sums else
              "; no SHA256SUMS (written before checksums)")
    if (version / "manifest.json").exists():
        checked = _verify_index(version, rehash=sums is None)
        return VerifyReport("index", path, version, f"index {where}: {checked}{summed}")
    if (version / "data.mdb").exists():
        return VerifyReport("kb", path, version, f"knowledge base {where}: {_verify_kb(version)}{summed}")
    raise VerifyFailed(f"{where} is neither an index (no manifest.json) nor a knowledge base (no data.mdb)")


def _verify_index(folder: Path, rehash: bool = True) -> str:
    """`rehash`: check the data files against the manifest's checksums (not needed when SHA256SUMS matched)."""
    from evdsearch.indexer.manifest import ITEMS_FILE, read_manifest
    from evdsearch.indexer.store import IndexStore

    manifest = read_manifest(folder)
    try:  # files present, checksums, FAISS loads, index / embeddings / items counts against the manifest
        store = IndexStore.open(folder, device="cpu", verify=rehash)
    except IncompatibleArtifact as err:
        raise VerifyFailed(str(err)) from err
    if not rehash:  # the files matched SHA256SUMS just now: the manifest's checksums must name the same digests
        sums = read_sums(folder) or {}
        bad = [name for name, digest in manifest.checksums.items() if sums.get(name) != digest]
        if bad:
            raise VerifyFailed(f"index {folder}: manifest.json's checksum of {', '.join(bad)} does not match")
    if store.embeddings.shape != (manifest.count, manifest.dim):
        raise VerifyFailed(f"index {folder}: embeddings.npy is {store.embeddings.shape}, "
                           f"manifest says {(manifest.count, manifest.dim)}")
    if not np.isfinite(store.embeddings).all():
        raise VerifyFailed(f"index {folder}: embeddings.npy holds NaN or inf")
    for row, item in enumerate(store.items):
        if not isinstance(item, dict) or item.get("id") != row or not isinstance(item.get("uri"), str):
            raise VerifyFailed(f"index {folder}: {ITEMS_FILE} line {row + 1} is not {{\"id\": {row}, \"uri\", ...}}")
    return (f"{manifest.count} images, dim {manifest.dim}, {manifest.factory}; checksums match, FAISS loads "
            f"({store.index.ntotal} vectors), embeddings {tuple(store.embeddings.shape)}, items parse")


def _verify_kb(folder: Path) -> str:
    from evdsearch.indexer.kb import Description, KnowledgeBase

    try:
        kb = KnowledgeBase.open(folder)
    except IncompatibleArtifact as err:
        raise VerifyFailed(str(err)) from err
    with kb:
        stats = kb.stats()
        entities = descriptions = 0
        for key, entry in _entries(kb):
            try:
                items = [Description(**d) for d in entry["descriptions"]]
                assert isinstance(entry["name"], str) and items
                assert all(isinstance(d.text, str) and math.isfinite(d.score) for d in items)
            except (KeyError, TypeError, AssertionError) as err:
                raise VerifyFailed(f"knowledge base {folder}: the record of {key!r} does not parse ({err!r})") from err
            entities += 1
            descriptions += len(items)
    if (entities, descriptions) != (stats.entities, stats.descriptions):
        raise VerifyFailed(f"knowledge base {folder}: holds {entities} entities, {descriptions} descriptions but "
                           f"its stats record says {stats.entities}, {stats.descriptions}")
    return f"{entities} entities, {descriptions} descriptions; every record parses, counts match the stats"


def _entries(kb):
    """(key, parsed JSON) for every entity; a record that is not JSON is a problem."""
    it = kb._iter_entries()
    while True:
        try:
            yield next(it)
        except StopIteration:
            return
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise VerifyFailed(f"knowledge base {kb.path}: a record is not valid JSON ({err})") from err
