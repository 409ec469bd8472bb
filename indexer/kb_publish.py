"""`import_new_version`: a KB import writes a new version (copy of the current one + the records) and swaps it in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from evdsearch.diskspace import as_disk_error, tree_bytes
from evdsearch.errors import IncompatibleArtifact
from evdsearch.indexer.kb import ImportReport, KBStats, KnowledgeBase
from evdsearch.versioned import current_version, publish_version

T = TypeVar("T")
LMDB_FILES = ("data.mdb", "lock.mdb")  # an LMDB folder's files: the old (unversioned) layout of a KB folder
RECORD_BYTES = 400  # LMDB bytes per imported description, about (for the space a full disk's message quotes)


def update_new_version(kb_dir: str | Path, write: Callable[[KnowledgeBase], T], extra_bytes: int = 0) -> T:
    """Run `write` on a copy of the current version of the KB at `kb_dir` (created when missing), then make
    that copy current; returns what `write` returned.

    The current version is copied (compacted) into the staging folder first, so servers reading it keep
    reading pages nobody writes; they pick the new version up on reload. All or nothing: an error in
    `write` or a kill leaves the current version as it was; a full or failing disk (LMDB reports it as an
    lmdb.Error) is raised as one WriteFailed line. `extra_bytes`: what `write` adds, for that message.
    """
    kb_dir = Path(kb_dir)
    source = current_version(kb_dir)
    needed = tree_bytes(source) + extra_bytes if (source / "data.mdb").is_file() else extra_bytes or None
    with publish_version(kb_dir, force=True, compat_files=LMDB_FILES, needed_bytes=needed) as staging:
        try:
            if (source / "data.mdb").is_file():
                with KnowledgeBase.open(source) as current:  # read-only: checks the format before copying
                    current.copy_to(staging)
            with KnowledgeBase.open(staging, readonly=False) as kb:
                return write(kb)
        except (lmdb.Error, IncompatibleArtifact) as err:  # open() wraps an lmdb.Error in IncompatibleArtifact
            disk = as_disk_error(err, staging / "data.mdb")
            if disk is None:
                raise
            raise disk from err


def import_new_version(kb_dir: str | Path, records: Iterable[Any]) -> tuple[ImportReport, KBStats]:
    """Import `records` into a new version of the KB at `kb_dir` and make it current (see update_new_version)."""
    records = list(records)
    return update_new_version(kb_dir, lambda kb: (kb.import_records(records), kb.stats()),
                              extra_bytes=len(records) * RECORD_BYTES)
