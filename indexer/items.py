"""items.jsonl opened lazily: an offset index over the file, each row parsed only when asked for."""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np


class ItemStore:
    """Row -> items.jsonl entry, without parsing the file at open (start-up and RAM stay flat in N).

    Opening scans the bytes once for line ends (numpy, no JSON); a lookup is one `pread` and one
    `json.loads`. Thread-safe: `pread` has no shared file position.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        size = os.fstat(self._fd).st_size
        if size:
            with mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ) as view:
                ends = np.flatnonzero(np.frombuffer(view, dtype=np.uint8) == ord("\n"))
        else:
            ends = np.empty(0, dtype=np.int64)
        if size and (not len(ends) or ends[-1] != size - 1):
            ends = np.append(ends, size)  # a last line without a newline
        starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        keep = ends > starts  # blank lines are not rows (as the old whole-file reader skipped them)
        self._starts, self._ends = starts[keep], ends[keep].astype(np.int64)

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, row: int) -> dict[str, Any]:
        start, end = int(self._starts[row]), int(self._ends[row])
        return json.loads(os.pread(self._fd, end - start, start))

    def close(self) -> None:
        os.close(self._fd)

    def __del__(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass
