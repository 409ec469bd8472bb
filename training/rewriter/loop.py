"""The optimisation loop both rewriter stages share: AdamW, warmup + linear decay, time bound, save."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evdsearch.artifacts import REWRITER_META as META_FILE
from evdsearch.atomic import atomic_directory, write_json_atomic
from evdsearch.training.rewriter.config import StageConfig
from evdsearch.training.rewriter.data import RankedExample

log = logging.getLogger(__name__)
LossFn = Callable[[Sequence[RankedExample]], Any]  # a batch -> scalar loss tensor


def lr_factor(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warmup to 1, then linear decay to 0 at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def mean_loss(loss_fn: LossFn, examples: Sequence[RankedExample], batch_size: int) -> float | None:
    """Average loss over `examples` without gradients (None when there are none)."""
    import torch

    if not examples:
        return None
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            total += float(loss_fn(batch)) * len(batch)
    return round(total / len(examples), 5)


def train_loop(model: Any, loss_fn: LossFn, train: Sequence[RankedExample], val: Sequence[RankedExample],
               cfg: StageConfig, desc: str) -> dict[str, Any]:
    """Run up to cfg.steps steps (or cfg.max_minutes); returns losses and timings for the record."""
    import torch
    from tqdm.auto import tqdm

    rng = random.Random(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg.warmup, cfg.steps))
    model.eval()
    val_before = mean_loss(loss_fn, val, cfg.batch_size)
    model.train()
    started, ema, first, step = time.perf_counter(), None, None, 0
    order: list[RankedExample] = []
    bar = tqdm(total=cfg.steps, desc=desc, unit="step", dynamic_ncols=True, disable=not cfg.progress)
    for step in range(1, cfg.steps + 1):
        if len(order) < cfg.batch_size:  # epochs of shuffled examples
            order += rng.sample(list(train), len(train))
        batch, order = order[: cfg.batch_size], order[cfg.batch_size :]
        loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        value = float(loss.detach())
        first = value if first is None else first
        ema = value if ema is None else 0.95 * ema + 0.05 * value
        bar.set_postfix(loss=f"{ema:.4f}")
        bar.update(1)
        if cfg.max_minutes and time.perf_counter() - started > cfg.max_minutes * 60:
            log.warning("%s: stopped at step %d of %d (--max-minutes %s)", desc, step, cfg.steps, cfg.max_minutes)
            break
    bar.close()
    elapsed = time.perf_counter() - started
    model.eval()
    val_after = mean_loss(loss_fn, val, cfg.batch_size)
    return {"steps_done": step, "first_loss": first, "final_loss_ema": ema, "val_loss_before": val_before,
            "val_loss_after": val_after, "train_examples": len(train), "val_examples": len(val),
            "elapsed_s": round(elapsed, 1)}


def save_rewriter(model: Any, tokenizer: Any, cfg: StageConfig, meta: dict[str, Any]) -> Path:
    """Write a transformers folder (model + tokenizer + generation config) and the training record."""
    model.generation_config.max_new_tokens = cfg.max_target_tokens
    model.generation_config.decoder_start_token_id = model.config.decoder_start_token_id
    model.generation_config.eos_token_id = model.config.eos_token_id
    model.generation_config.pad_token_id = model.config.pad_token_id
    with atomic_directory(cfg.out, force=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json_atomic(Path(tmp) / META_FILE, json.loads(json.dumps(meta, default=str)))
    return Path(cfg.out)


def check_out(cfg: StageConfig) -> None:
    """Refuse to overwrite an existing output folder before any work starts."""
    from evdsearch.errors import UserError

    if Path(cfg.out).exists() and not cfg.force:
        raise UserError(f"{cfg.out} already exists; pass --force to replace it")


def setup_torch(cfg: StageConfig) -> str:
    """Threads, seed and device for a stage; returns the torch device string."""
    import torch

    from evdsearch.device import resolve_device

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    return resolve_device(cfg.device)
