"""Versioned folders: `DIR/versions/<id>/` behind a `DIR/current` symlink that is swapped atomically.

A reader resolves `DIR/current` once (`current_version`) and then works on an immutable version folder,
so a writer never touches files a reader maps. A writer (`publish_version`) fills a staging folder,
fsyncs every file and folder, renames it to `versions/<id>`, then replaces `current` with
`os.replace` of a temporary symlink: at every instant `DIR` shows either the old or the new version.
A writer holds `DIR/.lock` (flock, dropped by the kernel even on kill -9), so any staging folder it finds
is a leftover of a killed writer and is swept. After a swap the previous version is kept (rollback,
readers still on it); older ones are removed.

Old-layout folders (data files directly in `DIR`, from releases before versioning) are read as they are;
the next publish writes `versions/` beside them, swaps `current` in, then atomically replaces each old
file by a link `DIR/NAME -> current/NAME`. Those links stay afterwards, so tools that read `DIR/NAME`
(`DIR/manifest.json`, `DIR/data.mdb`) keep working; they read whatever version is current.

Each version carries `SHA256SUMS` (evdsearch.integrity), written before it is fsynced and renamed. A
disk error (ENOSPC, EIO, ...) anywhere in a publish removes the half-written version, leaves `current`
as it was, and is raised as one `WriteFailed` line (evdsearch.diskspace). `rollback` points `current` back
at an older version and sets damaged ones aside as `versions/<id>.damaged` (swept by the next publish).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from evdsearch.diskspace import explain_disk_errors, tree_bytes
from evdsearch.errors import UserError
from evdsearch.integrity import write_sums

VERSIONS = "versions"  # folder of version folders
CURRENT = "current"  # symlink to versions/<id>, relative
LOCK = ".lock"  # flock-ed by writers
KEEP = 2  # versions kept after a swap: current and the previous one
_ID = re.compile(r"^v(\d{6,})$")  # v000001, v000002, ...
_ANY_ID = re.compile(r"^v(\d{6,})(\.damaged)?$")  # a damaged version's id is not reused (a partial one's may be)
_STAGING_SUFFIX = ".partial"
DAMAGED_SUFFIX = ".damaged"  # a version `rollback` set aside; the next publish removes it


class WriterBusy(UserError):
    """Another process is publishing into the same folder right now."""


def is_versioned(directory: str | os.PathLike) -> bool:
    """True when `directory` has a `current` link (the versioned layout)."""
    return os.path.islink(Path(directory) / CURRENT)


def current_version(directory: str | os.PathLike) -> Path:
    """The folder a reader should open: the real path of `DIR/current`, or `DIR` itself (old layout).

    Resolve once and keep the result: the version folder never changes, `DIR/current` may.
    """
    directory = Path(directory)
    link = directory / CURRENT
    if os.path.islink(link):
        return Path(os.path.realpath(link))
    return directory


def version_ids(directory: str | os.PathLike) -> list[str]:
    """Published version ids in `DIR/versions`, oldest first."""
    folder = Path(directory) / VERSIONS
    if not folder.is_dir():
        return []
    ids = [name for name in os.listdir(folder) if _ID.match(name) and (folder / name).is_dir()]
    return sorted(ids, key=lambda name: int(name[1:]))


def fsync_tree(root: Path) -> None:
    """fsync every file under `root`, then every folder (children before parents), then `root`."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (renames, new names) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Hold `DIR/.lock`: one writer (publish, rollback) at a time; WriterBusy when another holds it."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise WriterBusy(f"another evdsearch process is writing {directory} right now; "
                             f"try again when it has finished") from err
        yield
    finally:
        os.close(fd)  # closing drops the flock


def sweep_leftovers(directory: Path) -> list[Path]:
    """Remove staging folders and temporary links of killed writers, and versions set aside as damaged
    (call with the writer lock held)."""
    removed: list[Path] = []
    versions = directory / VERSIONS
    if versions.is_dir():
        for name in os.listdir(versions):
            if name.endswith((_STAGING_SUFFIX, DAMAGED_SUFFIX)):
                shutil.rmtree(versions / name, ignore_errors=True)
                removed.append(versions / name)
    for name in os.listdir(directory):
        if name.startswith(f".{CURRENT}.") and name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)
            removed.append(directory / name)
    return removed


def _sweep_old_versions(directory: Path, current: str) -> None:
    """Keep the current version and the one before it; remove older ones."""
    ids = version_ids(directory)
    keep = set(ids[-KEEP:]) | {current}
    for name in ids:
        if name not in keep:
            shutil.rmtree(directory / VERSIONS / name, ignore_errors=True)


def swap_current(directory: Path, version: str) -> None:
    """Point `DIR/current` at `versions/<version>` atomically (hold the writer lock)."""
    tmp = directory / f".{CURRENT}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(os.path.join(VERSIONS, version), tmp)
    os.replace(tmp, directory / CURRENT)  # atomic: readers see the old link or the new one
    fsync_dir(directory)


def _link_compat(directory: Path, names: Iterable[str]) -> None:
    """`DIR/NAME -> current/NAME` for each name: replaces an old-layout file atomically, then stays."""
    for name in names:
        path = directory / name
        target = os.path.join(CURRENT, name)
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        tmp = directory / f".{CURRENT}.{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, path)
    fsync_dir(directory)


@contextlib.contextmanager
def publish_version(directory: str | os.PathLike, force: bool = True, compat_files: Iterable[str] = (),
                    needed_bytes: int | None = None) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends without error, it becomes `DIR`'s current version.

    `force=False` refuses a folder that already holds a version (or an old-layout folder with files).
    `compat_files` names the data files of the old layout: each becomes a link `DIR/NAME -> current/NAME`.
    An error inside the block, or while the version is summed, fsynced, renamed and swapped in, removes
    the staging folder and leaves `DIR` as it was (a `DIR` this call created is removed again); a disk
    error is raised as WriteFailed, with `needed_bytes` (default: the current version's size) as the
    space the write needs.
    """
    directory = Path(directory)
    created = not directory.exists()
    if not force and _has_content(directory):
        raise UserError(f"{directory} already exists; pass --force to replace it")
    previous = os.path.basename(os.readlink(directory / CURRENT)) if is_versioned(directory) else None
    needed = needed_bytes if needed_bytes is not None else tree_bytes(current_version(directory)) \
        if not created else None
    kept = (f"nothing was written ({directory} did not exist and was removed again)" if created else
            f"the half-written version was removed and {previous or 'the old layout'} is still current")
    with explain_disk_errors(directory, needed, kept):
        (directory / VERSIONS).mkdir(parents=True, exist_ok=True)
        with writer_lock(directory):
            version = f"v{_next_id(directory):06d}"  # before the sweep removes damaged versions
            sweep_leftovers(directory)
            staging = directory / VERSIONS / f"{version}{_STAGING_SUFFIX}"
            final = directory / VERSIONS / version
            try:
                staging.mkdir()
                yield staging
                write_sums(staging)
                fsync_tree(staging)
                os.rename(staging, final)
                fsync_dir(directory / VERSIONS)
                swap_current(directory, version)
            except BaseException:
                shutil.rmtree(directory if created else staging, ignore_errors=True)
                if not created and os.path.realpath(directory / CURRENT) != str(final.resolve()):
                    shutil.rmtree(final, ignore_errors=True)  # renamed but never made current
                raise
            _link_compat(directory, compat_files)
            _sweep_old_versions(directory, version)


def _next_id(directory: Path) -> int:
    """One more than any id published so far (set aside as damaged or not)."""
    names = os.listdir(directory / VERSIONS)
    return max((int(m.group(1)) for m in map(_ANY_ID.match, names) if m), default=0) + 1


def rollback(directory: str | os.PathLike, version: str, damaged: Iterable[str] = ()) -> None:
    """Make `versions/<version>` current again and set each of `damaged` aside as `<id>.damaged`."""
    directory = Path(directory)
    with writer_lock(directory):
        if version not in version_ids(directory):
            raise UserError(f"{directory} has no version {version}")
        swap_current(directory, version)
        for name in damaged:
            if name != version and (directory / VERSIONS / name).is_dir():
                os.rename(directory / VERSIONS / name, directory / VERSIONS / f"{name}{DAMAGED_SUFFIX}")
        fsync_dir(directory / VERSIONS)


def _has_content(directory: Path) -> bool:
    if is_versioned(directory):
        return True
    if not directory.is_dir():
        return directory.exists()
    return any(name not in (VERSIONS, LOCK) and not name.endswith(".tmp") for name in os.listdir(directory))
