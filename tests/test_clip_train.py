"""CLIP training: loss goes down, checkpoints load back in open_clip, resume continues, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evdsearch.karpathy import KarpathyDataset, KarpathyImage, Sentence, write_karpathy

COLORS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 220), "yellow": (230, 220, 20)}
SHAPES = ("square", "circle")
ENTITY = {("red", "circle"): "tomato", ("yellow", "circle"): "lemon", ("green", "square"): "leaf tile"}


def make_toy_karpathy(root: Path, per_combo: dict[str, int]) -> Path:
    """A tiny shapes-like Karpathy data set: one coloured shape per 32 px image, 5 captions each."""
    from PIL import Image, ImageDraw

    images = []
    for split, count in per_combo.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        for n in range(count * len(COLORS) * len(SHAPES)):
            color, shape = list(COLORS)[n % len(COLORS)], SHAPES[(n // len(COLORS)) % len(SHAPES)]
            im = Image.new("RGB", (32, 32), (255, 255, 255))
            box = (6 + n % 5, 6 + n % 3, 24 + n % 5, 24 + n % 3)
            draw = ImageDraw.Draw(im)
            (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLORS[color])
            name = f"{n:06d}.png"
            im.save(root / "images" / split / name)
            entity = ENTITY.get((color, shape), "thing")
            sents = [Sentence(f"a {color} {shape}", extra={"kind": "attribute"}),
                     Sentence(f"a {shape} that is {color}", extra={"kind": "attribute"}),
                     Sentence(f"one {color} {shape} on white", extra={"kind": "attribute"}),
                     Sentence(f"a {entity}", extra={"kind": "seen_entity", "entities": [entity]}),
                     Sentence(f"a picture of a {entity}", extra={"kind": "unseen_entity", "entities": [entity]})]
            images.append(KarpathyImage(name, split, sents, filepath=f"images/{split}"))
    path = root / "dataset_toy.json"
    write_karpathy(KarpathyDataset("toy", images, root), path)
    return path


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    make_toy_karpathy(root, {"train": 4, "test": 1})
    return root


def _cfg(data: Path, out: Path, **kw):
    from evdsearch.training.clip.config import ClipTrainConfig

    base = dict(data=str(data), out=str(out), model="evd-tiny", steps=12, batch_size=16, lr=5e-4, warmup=2,
                device="cpu", save_every=0, num_workers=1)
    base.update(kw)
    return ClipTrainConfig(**base)


def test_training_reduces_loss_and_loads_back(toy_data: Path, tmp_path: Path) -> None:
    import open_clip
    import torch

    from evdsearch.training.clip.train import train_clip

    seen: list[str] = []

    def hook(caption, rng):
        seen.append(caption)
        return caption.upper() if rng.random() < 0.5 else None

    out = train_clip(_cfg(toy_data, tmp_path / "ckpt", steps=30, augment=False), caption_transform=hook)
    meta = json.loads((out / "evdsearch.json").read_text())
    assert meta["complete"] and meta["step"] == 30 and meta["train_images"] == 32
    assert meta["training"]["model"] == "evd-tiny"
    assert len(seen) == 30 * 16
    assert meta["loss_ema"] < meta["first_loss"] - 0.3
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}")
    saved = open_clip.create_model_and_transforms(f"local-dir:{out}")[0].state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key])
    assert preprocess is not None


def test_resume_continues_from_saved_step(toy_data: Path, tmp_path: Path) -> None:
    import torch

    from evdsearch.training.clip.state import TRAIN_STATE
    from evdsearch.training.clip.train import train_clip

    out = tmp_path / "ckpt"
    train_clip(_cfg(toy_data, out, steps=4, save_every=2))
    state = torch.load(out / TRAIN_STATE, weights_only=True)
    assert state["progress"]["step"] == 4
    with pytest.raises(Exception, match="--resume"):
        train_clip(_cfg(toy_data, out, steps=8))
    train_clip(_cfg(toy_data, out, steps=8, resume=True))
    meta = json.loads((out / "evdsearch.json").read_text())
    assert meta["step"] == 8 and meta["complete"]
    # the scheduler continued: 8 scheduler steps in total, not 4 from a fresh start
    assert torch.load(out / TRAIN_STATE, weights_only=True)["scheduler"]["last_epoch"] == 8


def test_resume_matches_uninterrupted_run(toy_data: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from evdsearch.training.clip.train import train_clip

    calls = []

    def interrupt_after_three_steps(caption, rng):
        calls.append(caption)
        if len(calls) > 3 * 8:  # batch_size 8: the 4th step never finishes
            raise KeyboardInterrupt

    straight = train_clip(_cfg(toy_data, tmp_path / "a", steps=5, batch_size=8))
    with pytest.raises(KeyboardInterrupt):
        train_clip(_cfg(toy_data, tmp_path / "b", steps=5, batch_size=8, save_every=3),
                   caption_transform=interrupt_after_three_steps)
    resumed = train_clip(_cfg(toy_data, tmp_path / "b", steps=5, batch_size=8, resume=True))
    a, b = load_file(straight / "open_clip_model.safetensors"), load_file(resumed / "open_clip_model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_cli_offline_hub_tag_fails_in_one_line(toy_data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from evdsearch import clip_models
    from evdsearch.cli import main

    monkeypatch.setattr(clip_models, "_hub_reachable", lambda timeout=3.0: False)
    code = main(["train", "clip", "--data", str(toy_data), "--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k",
                 "--out", str(tmp_path / "c"), "--steps", "1", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("evdsearch: error:") and "offline" in err


def test_cli_fills_tiny_recipe_defaults() -> None:
    from evdsearch.cli import build_parser
    from evdsearch.training.clip.cli import config_from_args
    from evdsearch.training.clip.config import RECIPES

    args = build_parser().parse_args(["train", "clip", "--data", "d", "--out", "o", "--model", "evd-tiny"])
    cfg = config_from_args(args)
    assert (cfg.steps, cfg.batch_size, cfg.lr) == tuple(RECIPES["evd-tiny"][k] for k in ("steps", "batch_size", "lr"))
    args = build_parser().parse_args(["train", "clip", "--data", "d", "--out", "o", "--model", "ViT-B-32",
                                      "--pretrained", "w.pt", "--lr", "3e-6"])
    cfg = config_from_args(args)
    assert cfg.lr == 3e-6 and cfg.batch_size == 128
