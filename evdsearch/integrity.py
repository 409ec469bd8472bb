"""Content checksums of a version folder: a `SHA256SUMS` file written with each version, checked at load.

The file has `sha256sum`'s format (`<64 hex>  <name>` a line, sorted), so `cd DIR/current && sha256sum -c
SHA256SUMS` checks a version by hand too. It lists every regular file of the folder except itself and
LMDB's `lock.mdb` (runtime reader slots, never data; readers open with `lock=False` and ignore it). The
check is strict, so damage to the list itself is caught as well: a line that does not parse, a listed
file that is missing, a file that is not listed, or a digest that differs each fail with the file named.
Folders written before checksums existed have no `SHA256SUMS`; `check_sums` then returns None.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from evdsearch.atomic import atomic_file
from evdsearch.errors import IncompatibleArtifact

SUMS_FILE = "SHA256SUMS"  # the checksum list inside each version folder
NOT_SUMMED = frozenset({SUMS_FILE, "lock.mdb"})  # files the list leaves out (itself; LMDB's lock file)
_LINE = re.compile(r"^([0-9a-f]{64})  ([^/\x00\n][^\x00\n]*)$")
_CHUNK = 1 << 20
_REMEMBERED = 64  # digests computed while writing, reused when the same file is listed (bounded)


class IntegrityError(IncompatibleArtifact):
    """A version folder whose files do not match its checksums (bit rot, a truncated copy, a bad disk)."""


@dataclass
class SumsReport:
    """What a successful check read."""

    files: int  # files whose digest matched
    bytes: int  # bytes hashed


_recent: OrderedDict[tuple[int, int, int, int], str] = OrderedDict()
_recent_lock = threading.Lock()


def _stat_key(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def sha256_file(path: str | os.PathLike, remember: bool = False) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks.

    `remember=True` (writers only) keeps the digest keyed by (device, inode, size, mtime) so that
    `write_sums` does not hash a file the writer just hashed; a check at load always reads the bytes.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    value = digest.hexdigest()
    if remember:
        key = _stat_key(Path(path))
        with _recent_lock:
            _recent[key] = value
            while len(_recent) > _REMEMBERED:
                _recent.popitem(last=False)
    return value


def _writer_digest(path: Path) -> str:
    with _recent_lock:
        known = _recent.get(_stat_key(path))
    return known if known is not None else sha256_file(path)


def summed_files(folder: Path) -> list[str]:
    """Relative names of the files a list covers, sorted (sub-folders included, links skipped)."""
    names = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel not in NOT_SUMMED and not path.is_symlink():
                names.append(rel)
    return sorted(names)


def write_sums(folder: Path) -> Path:
    """Write `folder/SHA256SUMS` (atomically) over every file `summed_files` names."""
    lines = [f"{_writer_digest(folder / name)}  {name}\n" for name in summed_files(folder)]
    with atomic_file(folder / SUMS_FILE) as handle:
        handle.writelines(lines)
    return folder / SUMS_FILE


def read_sums(folder: Path) -> dict[str, str] | None:
    """name -> digest from `folder/SHA256SUMS`; None when the folder has none; IntegrityError when it is damaged."""
    path = folder / SUMS_FILE
    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:
        raise IntegrityError(f"{path} is damaged (byte {err.start} is not ASCII)") from err
    if not text.endswith("\n"):
        raise IntegrityError(f"{path} is damaged or cut short (it does not end with a newline)")
    sums: dict[str, str] = {}
    for number, line in enumerate(text[:-1].split("\n"), 1):
        match = _LINE.match(line)
        if match is None or match.group(2) in sums:
            raise IntegrityError(f"{path} is damaged: line {number} is not '<sha256>  <file>' (or repeats a file)")
        sums[match.group(2)] = match.group(1)
    return sums


def check_sums(folder: str | os.PathLike, what: str = "version") -> SumsReport | None:
    """Re-hash every file of `folder` against its SHA256SUMS; the first problem raises IntegrityError naming
    the file. None when the folder predates checksums (no SHA256SUMS)."""
    folder = Path(folder)
    sums = read_sums(folder)
    if sums is None:
        return None
    present = set(summed_files(folder))
    unlisted = sorted(present - sums.keys())
    if unlisted:
        raise IntegrityError(f"{what} {folder}: {unlisted[0]} is not listed in {SUMS_FILE} (the list is damaged, "
                             f"or a file was added after the version was written)")
    total = 0
    for name, expected in sorted(sums.items()):
        path = folder / name
        if name not in present:
            raise IntegrityError(f"{what} {folder}: {name} is listed in {SUMS_FILE} but missing")
        size = path.stat().st_size
        actual = sha256_file(path)
        if actual != expected:
            raise IntegrityError(f"{what} {folder}: {name} is damaged ({size:,} bytes, sha256 {actual[:12]}… but "
                                 f"{SUMS_FILE} says {expected[:12]}…)")
        total += size
    return SumsReport(len(sums), total)
