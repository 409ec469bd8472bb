"""The CLIP training config, and per-model recipes the CLI uses for flags left unset."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ClipTrainConfig:
    """Everything `train_clip` needs; the CLI fills it, `OUT/evdsearch.json` records it."""

    data: str  # data folder holding one dataset_*.json, or a Karpathy JSON file
    out: str  # checkpoint folder to write (open_clip local-dir layout + train_state.pt)
    model: str = "evd-tiny"  # open_clip architecture name, or a checkpoint folder to fine-tune
    pretrained: str | None = None  # hub tag or local weights file for an architecture name
    images: str | None = None  # image root when it is not the JSON's folder
    split: str = "train"  # Karpathy split to train on
    steps: int = 500  # optimizer steps in total (a resumed run stops at the same total)
    batch_size: int = 256  # image-caption pairs per step (contrastive negatives = batch_size - 1)
    lr: float = 2e-3  # peak learning rate after warmup, cosine-decayed to lr * min_lr_ratio
    min_lr_ratio: float = 0.05  # floor of the cosine schedule, as a fraction of lr
    warmup: int = 50  # linear warmup steps
    weight_decay: float = 0.1  # AdamW decay on weight matrices (not on gains, biases, logit_scale)
    seed: int = 0  # seeds model init, batch sampling, caption choice and augmentation
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 2  # torch CPU threads (the project's CPU machines have 2 cores)
    save_every: int = 200  # write checkpoint + train_state.pt every N steps (0: only at the end)
    resume: bool = False  # continue from OUT/train_state.pt when it exists
    force: bool = False  # overwrite an existing checkpoint in OUT instead of refusing
    num_workers: int = 2  # threads decoding images once into the in-memory uint8 cache
    augment: bool = True  # random translation (a few pixels) of training images; colours untouched
    max_shift: int = 4  # largest translation in pixels when augment is on
    cache_dir: str | None = None  # where decoded image tensors are cached (default DATA/.cache)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes copied into evdsearch.json

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# Flags left unset on the CLI take these values: a from-scratch recipe for our tiny model (tuned to
# reach attribute R@1 >= 0.5 on the default shapes world in under 10 minutes on 2 CPU cores) and a
# gentle fine-tuning recipe for everything else (pretrained towers must not be blown away).
RECIPES: dict[str, dict[str, Any]] = {
    "evd-tiny": {"steps": 500, "batch_size": 256, "lr": 2e-3, "warmup": 50, "weight_decay": 0.1},
}
FINETUNE_RECIPE: dict[str, Any] = {"steps": 1000, "batch_size": 128, "lr": 1e-5, "warmup": 100,
                                   "weight_decay": 0.1}


def recipe_for(model: str, pretrained: str | None) -> dict[str, Any]:
    """Defaults for unset flags: the from-scratch recipe for a known tiny arch, else fine-tuning."""
    if model in RECIPES and not pretrained:
        return dict(RECIPES[model])
    return dict(FINETUNE_RECIPE)
