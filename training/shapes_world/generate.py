"""make_world: writes the whole shapes world folder (images, captions, entities, encyclopedia) from a seed."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evdsearch.atomic import atomic_directory, write_json_atomic, write_text_atomic
from evdsearch.errors import InvalidInput
from evdsearch.karpathy import KarpathyDataset, KarpathyImage, Sentence, tokenize, write_karpathy
from evdsearch.training.shapes_world.captions import make_captions
from evdsearch.training.shapes_world.classification import write_classification
from evdsearch.training.shapes_world.encyclopedia import encyclopedia_records
from evdsearch.training.shapes_world.entities import Entity, choose_seen, load_entities
from evdsearch.training.shapes_world.render import png_bytes, render_scene
from evdsearch.training.shapes_world.scene import sample_scene
from evdsearch.training.shapes_world.vocab import load_lexicon

GENERATOR_VERSION = 1  # bump when the same seed would give different files
SPLITS = ("train", "val", "test")


@dataclass
class WorldConfig:
    """Everything that decides a world; the same config gives byte-identical files."""

    out: Path  # the world folder to create
    seed: int = 0  # drives every random choice (seen entities, scenes, captions, encyclopedia order)
    n_train: int = 8000  # captioned images per split
    n_val: int = 500
    n_test: int = 1000
    image_size: int = 64  # pixels per side
    entity_rate: float = 0.5  # chance that an object is drawn as an entity
    seen_fraction: float = 0.6  # share of entities that train captions may name
    cls_per_entity: tuple[int, int, int] = (20, 5, 10)  # classification images per entity: train, val, test
    force: bool = False  # replace an existing folder
    progress: bool = True  # show a tqdm progress bar

    def split_sizes(self) -> dict[str, int]:
        return dict(zip(SPLITS, (self.n_train, self.n_val, self.n_test), strict=True))

    def check(self) -> None:
        """Reject values that cannot make a world, with a message naming the flag."""
        if min(self.split_sizes().values()) < 0 or min(self.cls_per_entity) < 0:
            raise InvalidInput("image counts must be >= 0")
        if self.image_size < 32:
            raise InvalidInput(f"--image-size must be at least 32 (got {self.image_size})")
        if not 0.0 <= self.entity_rate <= 1.0 or not 0.0 <= self.seen_fraction <= 1.0:
            raise InvalidInput("entity_rate and seen_fraction must lie in [0, 1]")


def _captioned_split(root: Path, split: str, n: int, cfg: WorldConfig, entities: list[Entity], seen: set[str],
                     progress) -> list[KarpathyImage]:
    """Draw and caption one split; each image has its own RNG, so images do not depend on each other."""
    lex = load_lexicon()
    folder = root / "images" / split
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(n):
        rng = random.Random(f"world:{cfg.seed}:{split}:{i}")
        scene = sample_scene(rng, entities, lex, cfg.image_size, cfg.entity_rate)
        filename = f"{i:06d}.png"
        (folder / filename).write_bytes(png_bytes(render_scene(scene, cfg.image_size, lex)))
        sentences = [Sentence(raw=c["raw"], tokens=tokenize(c["raw"]),
                              extra={"kind": c["kind"], "entities": c["entities"]})
                     for c in make_captions(scene, rng, lex, split, seen)]
        images.append(KarpathyImage(filename=filename, split=split, sentences=sentences,
                                    filepath=f"images/{split}",
                                    extra={"objects": scene.objects, "background": scene.background}))
        if progress is not None:
            progress.update(1)
    return images


def _world_summary(cfg: WorldConfig, images: list[KarpathyImage], entities: list[Entity], seen: set[str],
                   cls_counts: dict[str, int]) -> dict[str, Any]:
    kinds: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for image in images:
        kinds[image.split].update(s.kind for s in image.sentences)
    config = {k: v for k, v in asdict(cfg).items() if k not in ("out", "force", "progress")}
    config["cls_per_entity"] = list(cfg.cls_per_entity)
    return {
        "version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": config,
        "counts": {
            "images": cfg.split_sizes(),
            "captions": {split: dict(sorted(c.items())) for split, c in kinds.items()},
            "entities": {"total": len(entities), "seen": len(seen), "unseen": len(entities) - len(seen)},
            "classification": cls_counts,
        },
    }


def make_world(cfg: WorldConfig) -> Path:
    """Generate the world into `cfg.out` (written to a temporary folder, renamed when complete)."""
    from tqdm import tqdm

    cfg.check()
    entities = load_entities()
    seen = choose_seen(entities, cfg.seed, cfg.seen_fraction)
    total = sum(cfg.split_sizes().values()) + sum(cfg.cls_per_entity) * len(entities)
    with atomic_directory(cfg.out, cfg.force) as tmp, \
            tqdm(total=total, desc="world", unit="img", disable=not cfg.progress) as progress:
        images = []
        for split, n in cfg.split_sizes().items():
            images += _captioned_split(tmp, split, n, cfg, entities, seen, progress)
        write_karpathy(KarpathyDataset(name="shapes", images=images, images_root=tmp), tmp / "dataset_shapes.json")
        write_json_atomic(tmp / "entities.json", [
            {"name": e.name, "signature": e.signature, "seen": e.name in seen,
             "confusable_with": list(e.confusable_with)} for e in entities])
        write_text_atomic(tmp / "encyclopedia.jsonl", "".join(
            json.dumps(r) + "\n" for r in encyclopedia_records(entities, cfg.seed)))
        cls_counts = write_classification(tmp / "classification", entities,
                                          dict(zip(SPLITS, cfg.cls_per_entity, strict=True)), cfg.seed,
                                          load_lexicon(), cfg.image_size, progress)
        write_json_atomic(tmp / "classification" / "classes.json", [
            {"index": i, "name": e.name, "folder": e.folder, "seen": e.name in seen}
            for i, e in enumerate(sorted(entities, key=lambda e: e.folder))])
        write_json_atomic(tmp / "world.json", _world_summary(cfg, images, entities, seen, cls_counts))
    return Path(cfg.out)
