"""DEQR records as training examples: the rewriter input and its candidates, best first."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput


@dataclass
class RankedExample:
    """One caption: what the rewriter reads and the candidate rewrites ordered by retriever score."""

    input: str  # format_rewriter_input(caption, evidence)
    candidates: list[str]  # candidate rewrites, best first (candidates[0] is the SFT target)


def load_examples(deqr: str | Path, limit: int | None = None) -> list[RankedExample]:
    """All examples of a DEQR folder (`evdsearch train deqr` output)."""
    from evdsearch.training.deqr.io import read_records

    examples = [RankedExample(r["input"], [c["text"] for c in r["candidates"]]) for r in read_records(deqr, limit)]
    if not examples:
        raise InvalidInput(f"DEQR folder {deqr} holds no records")
    return examples


def split_examples(examples: Sequence[RankedExample], val_fraction: float, seed: int
                   ) -> tuple[list[RankedExample], list[RankedExample]]:
    """A seeded train / validation split (validation at most 500 examples, at least 1 when asked for)."""
    order = list(examples)
    random.Random(seed).shuffle(order)
    n_val = min(500, round(len(order) * val_fraction)) if val_fraction > 0 else 0
    n_val = max(n_val, 1) if val_fraction > 0 and len(order) > 1 else n_val
    return order[n_val:], order[:n_val]


def tokenize_pairs(tokenizer: Any, inputs: list[str], targets: list[str], max_input: int, max_target: int,
                   device: str) -> dict[str, Any]:
    """input_ids / attention_mask / labels (padding -> -100) tensors on `device`."""
    enc = tokenizer(inputs, return_tensors="pt", padding=True, truncation=True, max_length=max_input)
    labels = tokenizer(text_target=targets, return_tensors="pt", padding=True, truncation=True,
                       max_length=max_target).input_ids
    labels[labels == tokenizer.pad_token_id] = -100
    return {"input_ids": enc.input_ids.to(device), "attention_mask": enc.attention_mask.to(device),
            "labels": labels.to(device)}
