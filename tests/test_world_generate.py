"""Shapes world generation: determinism, file layout, Karpathy round trip, encyclopedia, classification view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evdsearch.errors import UserError
from evdsearch.karpathy import dataset_to_json, load_karpathy
from evdsearch.training.shapes_world.generate import WorldConfig, make_world


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _small(out: Path, seed: int) -> Path:
    return make_world(WorldConfig(out=out, seed=seed, n_train=12, n_val=4, n_test=4, cls_per_entity=(1, 0, 1),
                                  progress=False))


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = _files(_small(tmp_path / "a", 3)), _files(_small(tmp_path / "b", 3)), _files(_small(tmp_path / "c", 4))
    assert a == b
    assert a.keys() == c.keys()
    assert a["dataset_shapes.json"] != c["dataset_shapes.json"]
    assert a["images/train/000000.png"] != c["images/train/000000.png"]


def test_existing_folder_is_refused_without_force(tmp_path: Path) -> None:
    out = _small(tmp_path / "w", 0)
    with pytest.raises(UserError, match="already exists"):
        _small(out, 0)
    make_world(WorldConfig(out=out, seed=1, n_train=2, n_val=1, n_test=1, cls_per_entity=(0, 0, 0),
                           force=True, progress=False))
    assert json.loads((out / "world.json").read_text())["seed"] == 1


def test_layout_and_karpathy_round_trip(tiny_world: Path) -> None:
    path = tiny_world / "dataset_shapes.json"
    ds = load_karpathy(path)
    assert dataset_to_json(ds) == json.loads(path.read_text())
    assert {s: len(ds.split(s)) for s in ("train", "val", "test")} == {"train": 64, "val": 16, "test": 32}
    for image in ds.images:
        assert image.filepath == f"images/{image.split}"
        assert ds.image_path(image).is_file()
        assert len(image.sentences) == 5 and 1 <= len(image.extra["objects"]) <= 3
        assert all(s.kind in ("attribute", "seen_entity", "unseen_entity") for s in image.sentences)
    from PIL import Image

    with Image.open(ds.image_path(ds.images[0])) as im:
        assert im.size == (64, 64) and im.mode == "RGB"


def test_world_json_counts(tiny_world: Path) -> None:
    world = json.loads((tiny_world / "world.json").read_text())
    ds = load_karpathy(tiny_world / "dataset_shapes.json")
    assert world["seed"] == 0 and world["version"] >= 1
    for split, kinds in world["counts"]["captions"].items():
        assert sum(kinds.values()) == 5 * world["counts"]["images"][split]
        for kind, n in kinds.items():
            assert n == sum(s.kind == kind for img in ds.split(split) for s in img.sentences)
    assert world["counts"]["captions"]["test"].get("unseen_entity", 0) > 0


def test_entities_and_encyclopedia(tiny_world: Path) -> None:
    entities = json.loads((tiny_world / "entities.json").read_text())
    assert len(entities) >= 60
    assert 0 < sum(e["seen"] for e in entities) < len(entities)
    names = {e["name"] for e in entities}
    sigs = {tuple(sorted(e["signature"].items())) for e in entities}
    assert len(sigs) == len(entities)
    assert all(set(e["confusable_with"]) <= names - {e["name"]} for e in entities)
    lines = [json.loads(line) for line in (tiny_world / "encyclopedia.jsonl").read_text().splitlines()]
    by_entity: dict[str, list[str]] = {}
    for line in lines:
        assert line["source"] == "encyclopedia" and line["score"] == 1.0 and line["description"]
        by_entity.setdefault(line["entity"], []).append(line["kind"])
    assert set(by_entity) == names
    for kinds in by_entity.values():
        assert sorted(kinds) == ["non_visual", "non_visual", "visual", "visual", "wrong"]


def test_classification_view(tiny_world: Path) -> None:
    classes = json.loads((tiny_world / "classification" / "classes.json").read_text())
    entities = json.loads((tiny_world / "entities.json").read_text())
    assert [c["folder"] for c in classes] == sorted(e["name"].replace(" ", "_") for e in entities)
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        folders = sorted(p for p in (tiny_world / "classification" / split).iterdir())
        assert [p.name for p in folders] == [c["folder"] for c in classes]
        assert all(len(list(p.glob("*.png"))) == n for p in folders)


def test_cli_make_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evdsearch.cli import main

    code = main(["world", "make", "--out", str(tmp_path / "w"), "--seed", "2", "--n-train", "3", "--n-val", "2",
                 "--n-test", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "train" in out and "attribute" in out
    assert main(["world", "make", "--out", str(tmp_path / "w"), "--n-train", "1"]) == 2
