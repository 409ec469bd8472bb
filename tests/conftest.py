"""Shared fixtures: tiny in-process models and data that every stage's tests can use."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised evd-tiny CLIP saved as a checkpoint folder (seconds to build)."""
    import open_clip
    import torch

    from evdsearch.clip_models import create_clip, model_config, save_clip_checkpoint

    torch.manual_seed(0)
    clip = create_clip("evd-tiny", device="cpu")
    out = tmp_path_factory.mktemp("tiny_clip")
    preprocess_cfg = open_clip.get_model_preprocess_cfg(clip.model)
    return save_clip_checkpoint(clip.model, model_config("evd-tiny"), preprocess_cfg, out)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small shapes world (64 / 16 / 32 images, 2 / 1 / 1 classification images per entity)."""
    from evdsearch.training.shapes_world.generate import WorldConfig, make_world

    out = tmp_path_factory.mktemp("tiny_world") / "world"
    return make_world(WorldConfig(out=out, seed=0, n_train=64, n_val=16, n_test=32,
                                  cls_per_entity=(2, 1, 1), progress=False))
