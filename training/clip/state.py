"""Resumable training state: optimizer, schedule, step and RNGs in OUT/train_state.pt.

Weights are not duplicated here: they live in the checkpoint folder beside it (safetensors), which
is written at the same moments, so a resumed run rebuilds the model from OUT itself.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

TRAIN_STATE = "train_state.pt"


def lr_lambda(warmup: int, total: int, min_ratio: float):
    """Linear warmup then cosine decay to `min_ratio`: the usual CLIP schedule, as a LambdaLR factor."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups as open_clip does: no decay on gains, biases (1-d tensors) or logit_scale."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        exclude = param.ndim < 2 or "logit_scale" in name
        (no_decay if exclude else decay).append(param)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def save_state(out: Path, progress: dict[str, Any], optimizer: Any, scheduler: Any, rng: random.Random,
               torch_gen: Any) -> None:
    """Write train_state.pt atomically; `progress` holds step, loss, elapsed time."""
    import torch

    state = {"progress": progress, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "python_rng": rng.getstate(), "torch_gen": torch_gen.get_state()}
    tmp = out / f".{TRAIN_STATE}.tmp"
    torch.save(state, tmp)
    tmp.replace(out / TRAIN_STATE)


def load_state(out: Path, optimizer: Any, scheduler: Any, rng: random.Random, torch_gen: Any) -> dict:
    """Restore what `save_state` wrote; returns its `progress` dict."""
    import torch

    state = torch.load(out / TRAIN_STATE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.setstate(state["python_rng"])
    torch_gen.set_state(state["torch_gen"])
    return dict(state["progress"])
