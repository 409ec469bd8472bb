"""`train_clip`: contrastive training of an open_clip model on a Karpathy split, resumable.

One loop serves both uses: from scratch (evd-tiny on the shapes world) and fine-tuning (any open_clip
architecture + pretrained weights, or a checkpoint folder). `caption_transform` is the hook the
rewriter-augmented fine-tuning plugs into (it rewrites some captions with entity descriptions).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

from evdsearch.clip_models import (
    CKPT_CONFIG,
    LoadedClip,
    create_clip,
    is_checkpoint_dir,
    model_config,
    save_clip_checkpoint,
)
from evdsearch.datasets import find_dataset_json, open_dataset
from evdsearch.errors import InvalidInput, UserError
from evdsearch.training.clip.config import ClipTrainConfig
from evdsearch.training.clip.data import CaptionSampler, CaptionTransform, cached_images
from evdsearch.training.clip.state import TRAIN_STATE, load_state, lr_lambda, param_groups, save_state
from evdsearch.training.clip.text_encode import encode_text_trimmed

log = logging.getLogger(__name__)


def _resuming(cfg: ClipTrainConfig, out: Path) -> bool:
    """Decide between fresh start and resume; refuse to clobber a checkpoint by accident."""
    if cfg.resume and (out / TRAIN_STATE).is_file():
        return True
    if cfg.model and Path(cfg.model).exists() and out.exists() and Path(cfg.model).resolve() == out.resolve():
        raise InvalidInput("--out must differ from the checkpoint folder given as --model")
    if (is_checkpoint_dir(out) or (out / TRAIN_STATE).exists()) and not cfg.force:
        hint = "it has no train_state.pt to resume; " if cfg.resume else "pass --resume to continue it or "
        raise UserError(f"{out} already holds a checkpoint; {hint}pass --force to overwrite it")
    return False


def _build_model(cfg: ClipTrainConfig, out: Path, resuming: bool) -> tuple[LoadedClip, dict[str, Any]]:
    """The model to train and its architecture dict (saved with every checkpoint)."""
    source = str(out) if resuming else cfg.model
    clip = create_clip(source, pretrained=None if resuming else cfg.pretrained, device=cfg.device, train=True)
    if is_checkpoint_dir(source):
        arch = json.loads((Path(source) / CKPT_CONFIG).read_text(encoding="utf-8"))["model_cfg"]
    else:
        arch = model_config(source)
    return clip, arch


def _pixels_to_input(batch: Any, mean: Any, std: Any, shift: int, gen: Any) -> Any:
    """uint8 (B, 3, S, S) -> normalised float, randomly translated by up to `shift` pixels."""
    import torch
    import torch.nn.functional as F

    x = batch.float().div_(255)
    if shift > 0:
        size = x.shape[-1]
        padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        offsets = torch.randint(0, 2 * shift + 1, (x.shape[0], 2), generator=gen).tolist()
        x = torch.stack([padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets)])
    return (x - mean) / std


class BatchSource:
    """Training batches: in-memory uint8 images + sampled captions -> model inputs and tokens.

    Holds the run's two RNGs (captions/rows in Python, augmentation in torch) so resume restores them.
    """

    def __init__(self, cfg: ClipTrainConfig, clip: LoadedClip, caption_transform: CaptionTransform | None) -> None:
        import torch

        dataset = open_dataset(cfg.data, cfg.images)
        images = dataset.split(cfg.split)
        cache_dir = cfg.cache_dir or find_dataset_json(cfg.data).parent / ".cache"
        pixels, mean, std = cached_images(dataset, images, clip.preprocess, cache_dir, cfg.num_workers)
        self.pixels = torch.from_numpy(pixels).to(clip.device)
        self.mean = torch.tensor(mean, device=clip.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=clip.device).view(1, 3, 1, 1)
        self.shift = cfg.max_shift if cfg.augment else 0
        self.tokenizer, self.device = clip.tokenizer, clip.device
        self.rng, self.gen = random.Random(cfg.seed), torch.Generator().manual_seed(cfg.seed)
        self.sampler = CaptionSampler([[s.raw for s in im.sentences] for im in images], self.rng, caption_transform)
        self.info = {"train_images": len(images), "train_captions": sum(len(im.sentences) for im in images)}

    def next(self, batch_size: int) -> tuple[Any, Any]:
        rows, texts = self.sampler.batch(batch_size)
        inputs = _pixels_to_input(self.pixels[rows], self.mean, self.std, self.shift, self.gen)
        return inputs, self.tokenizer(texts).to(self.device)


def _step(model: Any, inputs: Any, tokens: Any, loss_fn: Any, optimizer: Any, scheduler: Any) -> float:
    """One contrastive update (bf16 autocast on GPU); returns the loss."""
    import torch

    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=inputs.is_cuda):
        image_feats = model.encode_image(inputs, normalize=True)
        text_feats = encode_text_trimmed(model, tokens)
        loss = loss_fn(image_feats, text_feats, model.logit_scale.exp())
    if not torch.isfinite(loss):
        raise UserError(f"training loss became {loss.item()}; lower --lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    with torch.no_grad():  # as in CLIP: temperature capped at 100
        model.logit_scale.clamp_(0, math.log(100))
    return float(loss.item())


def train_clip(cfg: ClipTrainConfig, caption_transform: CaptionTransform | None = None) -> Path:
    """Train, saving a checkpoint folder every `save_every` steps and at the end; returns the folder."""
    import open_clip
    import torch
    from open_clip.loss import ClipLoss
    from tqdm.auto import tqdm

    if cfg.steps < 1 or cfg.batch_size < 2:
        raise InvalidInput("--steps must be >= 1 and --batch-size >= 2 (contrastive loss needs negatives)")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    resuming = _resuming(cfg, out)
    torch.manual_seed(cfg.seed)
    clip, arch = _build_model(cfg, out, resuming)
    model = clip.model
    batches = BatchSource(cfg, clip, caption_transform)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.warmup, cfg.steps, cfg.min_lr_ratio))
    progress: dict[str, Any] = {"step": 0, "first_loss": None, "loss_ema": None, "last_loss": None, "elapsed_s": 0.0}
    info = {**batches.info, "base_model": {"model": cfg.model, "pretrained": cfg.pretrained or "",
                                           "fingerprint": clip.identity.fingerprint},
            "caption_transform": getattr(caption_transform, "__name__", repr(caption_transform))
            if caption_transform else None}
    if resuming:  # OUT's own identity is not the base model: keep the one recorded at the first start
        progress = load_state(out, optimizer, scheduler, batches.rng, batches.gen)
        info["base_model"] = _recorded(out).get("base_model", info["base_model"])
        log.info("resuming %s at step %d", out, progress["step"])

    def checkpoint(done: bool) -> None:
        extra = {"training": cfg.to_json(), "complete": done, **progress, **info}
        save_clip_checkpoint(model, arch, open_clip.get_model_preprocess_cfg(model), out, extra)
        save_state(out, progress, optimizer, scheduler, batches.rng, batches.gen)

    loss_fn, started = ClipLoss(), time.perf_counter() - progress["elapsed_s"]
    bar = tqdm(total=cfg.steps, initial=progress["step"], desc="train clip", unit="step", dynamic_ncols=True)
    model.train()
    for step in range(progress["step"], cfg.steps):
        value = _step(model, *batches.next(cfg.batch_size), loss_fn, optimizer, scheduler)
        ema = progress["loss_ema"]
        progress.update(step=step + 1, last_loss=value, loss_ema=value if ema is None else 0.9 * ema + 0.1 * value,
                        elapsed_s=round(time.perf_counter() - started, 2), first_loss=progress["first_loss"] or value)
        bar.set_postfix(loss=f"{progress['loss_ema']:.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
        bar.update(1)
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            checkpoint(done=False)
    bar.close()
    checkpoint(done=True)
    return out


def _recorded(out: Path) -> dict[str, Any]:
    path = out / "evdsearch.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
