"""Configs of the rewriter training stages (SFT, PRO); the CLI fills them, the output folder records them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evdsearch.training.rewriter.model import ScratchT5Config


@dataclass
class StageConfig:
    """What SFT and PRO share."""

    deqr: str  # DEQR folder (`evdsearch train deqr`)
    out: str  # rewriter folder to write (transformers save_pretrained layout)
    base: str  # SFT: scratch | T5 name | folder; PRO: the SFT rewriter folder
    steps: int = 2000  # optimizer steps (the run also stops at max_minutes)
    batch_size: int = 32  # captions per step
    lr: float = 1e-3  # peak learning rate (AdamW), linear warmup then linear decay to 0
    warmup: int = 100  # warmup steps
    weight_decay: float = 0.01  # AdamW weight decay
    max_minutes: float = 10.0  # wall-clock bound on the training loop (0: no bound)
    val_fraction: float = 0.05  # DEQR records held out for the validation loss
    max_input_tokens: int = 256  # rewriter input truncation (query + evidence)
    max_target_tokens: int = 64  # rewrite truncation; also the saved max_new_tokens
    limit: int | None = None  # read at most this many DEQR records
    seed: int = 0  # init, batch order, split
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 2  # torch CPU threads (0: torch's default)
    force: bool = False  # replace an existing output folder
    progress: bool = True  # tqdm bar

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SftConfig(StageConfig):
    """Supervised fine-tuning on each caption's best candidate."""

    scratch: ScratchT5Config = field(default_factory=ScratchT5Config)  # used when base == "scratch"


@dataclass
class ProConfig(StageConfig):
    """Preference Ranking Optimization over each caption's ranked candidates."""

    lr: float = 1e-4  # gentler than SFT: PRO starts from the SFT model
    steps: int = 600
    batch_size: int = 16
    warmup: int = 30
    list_size: int = 4  # candidates per caption in one PRO list (the best one always included)
    beta: float = 1.0  # weight of the SFT NLL on the best candidate
