"""Resumable EVD output: a JSONL of descriptions plus a progress log of finished LLM calls.

Each finished call appends its description lines to OUT (one write, fsync) and then one line to
OUT's progress log (`x.jsonl` -> `x.progress.jsonl`) with the key, the raw answer and token counts.
On restart the progress log says which keys are done; description lines whose key never reached
the log (killed between the two writes) are dropped, and a half-written last line is cut, so a
rerun continues where it stopped and writes no duplicate.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evdsearch.atomic import write_text_atomic
from evdsearch.errors import InvalidInput
from evdsearch.training.evd.clean import description_key

DescribeKey = tuple[str, str, int]  # (entity, prompt name, sample index)


def progress_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".progress.jsonl")


def _read_complete_lines(path: Path) -> list[dict[str, Any]]:
    """Parsed JSON lines; a torn last line (no newline: the writer was killed) is cut off the file."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if len(complete) != len(raw):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    try:
        return [json.loads(line) for line in complete.decode("utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{path} is not a JSONL file written by `evd generate` ({err})") from err


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@dataclass
class EvdStore:
    """The state of one output file: done keys, written descriptions, token totals so far."""

    out: Path
    done: set[DescribeKey] = field(default_factory=set)
    extracted: dict[str, list[str]] = field(default_factory=dict)  # caption -> entities
    seen: set[tuple[str, str]] = field(default_factory=set)  # (entity, description_key)
    prompt_tokens: int = 0  # over every call in the progress log, earlier runs included
    completion_tokens: int = 0
    n_descriptions: int = 0

    @classmethod
    def open(cls, out: str | Path) -> EvdStore:
        """Load (and repair) what an earlier run left; a missing file is an empty store."""
        store = cls(out=Path(out))
        store.out.parent.mkdir(parents=True, exist_ok=True)
        for entry in _read_complete_lines(progress_path(store.out)):
            store.prompt_tokens += int(entry.get("prompt_tokens", 0))
            store.completion_tokens += int(entry.get("completion_tokens", 0))
            if entry.get("stage") == "extract":
                store.extracted[entry["caption"]] = list(entry["entities"])
            else:
                store.done.add((entry["entity"], entry["prompt"], int(entry["sample"])))
        lines = _read_complete_lines(store.out)
        try:
            kept = [r for r in lines if (r["entity"], r["prompt"], int(r["sample"])) in store.done]
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput(f"{store.out} has lines without entity/prompt/sample; not an `evd generate` "
                               "output, choose another --out") from err
        if len(kept) != len(lines):  # written by a call that never reached the progress log
            write_text_atomic(store.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
        for record in kept:
            store.seen.add((record["entity"], description_key(record["description"])))
        store.n_descriptions = len(kept)
        return store

    def add_description_call(self, key: DescribeKey, descriptions: list[dict[str, Any]],
                             log_entry: dict[str, Any]) -> int:
        """Write one call's new (not yet seen) descriptions, then mark the call done; returns how many."""
        fresh = []
        for record in descriptions:
            seen_key = (record["entity"], description_key(record["description"]))
            if seen_key not in self.seen:
                self.seen.add(seen_key)
                fresh.append(record)
        _append(self.out, fresh)
        entity, prompt, sample = key
        _append(progress_path(self.out),
                [{"stage": "describe", "entity": entity, "prompt": prompt, "sample": sample, **log_entry}])
        self.done.add(key)
        self._count(log_entry)
        self.n_descriptions += len(fresh)
        return len(fresh)

    def add_extraction(self, caption: str, entities: list[str], log_entry: dict[str, Any]) -> None:
        """Remember the entities the LLM found in one caption."""
        _append(progress_path(self.out), [{"stage": "extract", "caption": caption, "entities": entities, **log_entry}])
        self.extracted[caption] = entities
        self._count(log_entry)

    def _count(self, log_entry: dict[str, Any]) -> None:
        self.prompt_tokens += int(log_entry.get("prompt_tokens", 0))
        self.completion_tokens += int(log_entry.get("completion_tokens", 0))
