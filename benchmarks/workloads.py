"""The query streams `bench serve` and `bench soak` send: a built-in mix or a file, cycled, made unique, or a Zipf log."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput

DEFAULT_QUERIES = (
    "a tomato next to a school bus",
    "a red panda sitting in a tree",
    "two red circles and a blue square",
    "a golden retriever playing in the snow",
    "a yellow taxi in a busy street",
    "a small green triangle above a large striped star",
    "a bowl of strawberries on a wooden table",
    "a fire truck parked by a lighthouse",
)


def read_queries(path: str | None) -> list[str]:
    """One query a line (blank lines and '#' comments skipped); the built-in mix when no file is given."""
    if path is None:
        return list(DEFAULT_QUERIES)
    from pathlib import Path

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InvalidInput(f"cannot read --queries {path}: {err.strerror}") from err
    queries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not queries:
        raise InvalidInput(f"--queries {path} holds no queries")
    return queries


def unique_texts(call: Callable[[str], Any], counter: Iterator[int] | None = None) -> Callable[[str], Any]:
    """Append a running number to each query, so server-side rewrite caches never hit. Pass one `counter` to
    every cell of a run: a fresh count per cell would send the next cell the previous one's texts again."""
    import itertools

    counter = counter if counter is not None else itertools.count()
    return lambda text: call(f"{text} {next(counter)}")


WORKLOADS = ("cycle", "cold", "warm")  # the query streams a cell can be measured with; see make_workloads


@dataclass
class Workload:
    """One query stream: `queries` sent in order (cycled), with a running number appended when `unique`."""

    name: str  # cycle: the queries in turn; cold: every text unique (no cache can hit); warm: a Zipf query log
    queries: Sequence[str]
    unique: bool = False


def zipf_log(queries: Sequence[str], size: int = 4096, exponent: float = 1.1, seed: int = 0) -> list[str]:
    """A query log where the r-th query (in the given order) is asked with probability ~ 1 / r**exponent,
    as search logs are: a few head queries repeat often, the tail is rare. Seeded, so runs agree."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(queries) + 1, dtype=np.float64) ** exponent
    picks = rng.choice(len(queries), size=size, p=weights / weights.sum())
    return [queries[i] for i in picks]


def make_workloads(names: Sequence[str], queries: Sequence[str], zipf_exponent: float = 1.1) -> list[Workload]:
    """Workloads by name (see WORKLOADS)."""
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise InvalidInput(f"--workloads takes {', '.join(WORKLOADS)} (comma-separated), got {', '.join(names)!r}")
    made = {"cycle": Workload("cycle", list(queries)), "cold": Workload("cold", list(queries), unique=True),
            "warm": Workload("warm", zipf_log(queries, exponent=zipf_exponent))}
    return [made[n] for n in names]
