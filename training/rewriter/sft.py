"""Stage 1: supervised fine-tuning of the T5 rewriter on each caption's best DEQR candidate."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evdsearch.training.rewriter.config import SftConfig
from evdsearch.training.rewriter.data import RankedExample, load_examples, split_examples, tokenize_pairs
from evdsearch.training.rewriter.loop import check_out, save_rewriter, setup_torch, train_loop
from evdsearch.training.rewriter.model import SCRATCH, count_parameters, load_pretrained, scratch_model


def sft_loss_fn(model: Any, tokenizer: Any, cfg: SftConfig, device: str):  # noqa: ANN201 - a closure
    """Token-mean cross-entropy of the best candidate given the input (transformers' own loss)."""

    def loss(batch: Sequence[RankedExample]) -> Any:
        enc = tokenize_pairs(tokenizer, [e.input for e in batch], [e.candidates[0] for e in batch],
                             cfg.max_input_tokens, cfg.max_target_tokens, device)
        return model(**enc).loss

    return loss


def tokenizer_texts(examples: Sequence[RankedExample]) -> list[str]:
    """What a scratch tokenizer is trained on: every input and every candidate."""
    return [e.input for e in examples] + [c for e in examples for c in e.candidates]


def train_sft(cfg: SftConfig) -> Path:
    """Train (from scratch or a pretrained T5) and save the rewriter folder; returns it."""
    check_out(cfg)
    device = setup_torch(cfg)
    examples = load_examples(cfg.deqr, cfg.limit)
    train, val = split_examples(examples, cfg.val_fraction, cfg.seed)
    if cfg.base == SCRATCH:
        model, tokenizer = scratch_model(tokenizer_texts(examples), cfg.scratch, cfg.seed)
    else:
        model, tokenizer = load_pretrained(cfg.base)
    model.to(device)
    result = train_loop(model, sft_loss_fn(model, tokenizer, cfg, device), train, val, cfg, "rewriter sft")
    meta = {"stage": "sft", "config": cfg.to_json(), "parameters": count_parameters(model), "result": result}
    return save_rewriter(model.cpu(), tokenizer, cfg, meta)
