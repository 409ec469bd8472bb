"""Write errors from a full or failing disk (ENOSPC, EDQUOT, EFBIG, EIO) turned into one line that says what to do.

Writers wrap their work in `explain_disk_errors`: an OSError with one of these errno values becomes a
`WriteFailed` naming the file, the space the write needs (an estimate) and the space free, plus what
state the folder was left in. Files written through a memory map are reserved first (`reserve`), so a
full disk is an ENOSPC error at the reservation, never a SIGBUS on a page written later.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from evdsearch.errors import UserError

DISK_ERRNOS = {  # errno -> what it means for a writer
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this filesystem (or the process's file size limit)",
    errno.EIO: "I/O error (the disk or filesystem failed the write)",
}
FULL_BELOW = 1 << 20  # an EIO with less than this free (or than the write needs) is a full disk
_MESSAGES = {os.strerror(code): code for code in DISK_ERRNOS}  # "No space left on device" -> ENOSPC


class WriteFailed(UserError):
    """A write the disk stopped (full, over quota, failing); the half-written output was removed."""


def is_disk_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK_ERRNOS


def as_disk_error(err: BaseException, path: str | os.PathLike | None = None) -> OSError | None:
    """An OSError for a library error that only carries errno's text (LMDB: "mdb_txn_commit: No space left on
    device"), else None."""
    if is_disk_error(err):
        return err  # type: ignore[return-value]
    text = str(err)
    for message, code in _MESSAGES.items():
        if message in text:
            return OSError(code, message, None if path is None else str(path))
    return None


def fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes free for this user on the filesystem holding `path` (its nearest existing parent); None if unknown."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def tree_bytes(path: str | os.PathLike) -> int:
    """Apparent size of every file under `path` (links not followed); 0 when it does not exist."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            file = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                total += 0 if os.path.islink(file) else os.stat(file).st_size
    return total


def reserve(path: str | os.PathLike, nbytes: int) -> None:
    """Allocate `nbytes` of `path` on disk now (posix_fallocate): a memory map written later cannot hit a full
    disk. Raises the filesystem's OSError (ENOSPC) naming the file."""
    if nbytes <= 0:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            return  # a filesystem without fallocate: nothing reserved, writes still report their own errors
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        os.close(fd)


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """Give an OSError raised inside (a `write()` on an open handle carries no file name) the name `path`."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def write_failed(err: OSError, where: Path, needed: int | None, outcome: str) -> WriteFailed:
    """The one-line message: what failed, on which file, the space needed and free, and what state is left."""
    what = DISK_ERRNOS.get(err.errno or 0, err.strerror or "write error")
    target = err.filename or where
    free = free_bytes(where)
    if err.errno == errno.EIO and free is not None and free < max(needed or 0, FULL_BELOW):
        what = "no space left on device (reported as an I/O error: LMDB does so for a short write)"
    space = []
    if needed:
        space.append(f"the write needs about {fmt_bytes(needed)}")
    if free is not None:
        space.append(f"the filesystem holding {where} has {fmt_bytes(free)} free")
    hint = "; check the disk (dmesg, SMART) before writing there again" if what.startswith("I/O error") \
        else "; free some space (or write elsewhere) and run it again"
    return WriteFailed(f"{what} while writing {target}" + (f": {', '.join(space)}" if space else "")
                       + f"; {outcome}{hint}")


@contextlib.contextmanager
def explain_disk_errors(where: str | os.PathLike, needed: int | None, outcome: str) -> Iterator[None]:
    """Turn a disk error raised inside into `WriteFailed` (see `write_failed`); other errors pass unchanged."""
    try:
        yield
    except OSError as err:
        if not is_disk_error(err):
            raise
        raise write_failed(err, Path(where), needed, outcome) from err
