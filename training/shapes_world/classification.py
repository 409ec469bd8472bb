"""The ImageFolder classification view: one entity object per image, a folder per entity."""

from __future__ import annotations

import random
from pathlib import Path

from evdsearch.training.shapes_world.entities import Entity
from evdsearch.training.shapes_world.render import png_bytes, render_scene
from evdsearch.training.shapes_world.scene import Scene, place
from evdsearch.training.shapes_world.vocab import Lexicon


def entity_scene(ent: Entity, rng: random.Random, lex: Lexicon, image_size: int) -> Scene:
    """The entity alone, anywhere in the image, on a random background."""
    obj = {**ent.signature, "entity": ent.name}
    obj["bbox"] = place(obj, (0.0, 0.0, 1.0, 1.0), rng, lex, image_size)
    return Scene(background=rng.choice(sorted(lex.backgrounds)), objects=[obj])


def write_classification(root: Path, entities: list[Entity], counts: dict[str, int], seed: int,
                         lex: Lexicon, image_size: int, progress=None) -> dict[str, int]:
    """Write classification/{split}/{entity_folder}/NNNN.png; returns images per split."""
    written = {}
    for split, n in counts.items():
        for ent in entities:
            folder = root / split / ent.folder
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rng = random.Random(f"classification:{seed}:{split}:{ent.name}:{i}")
                image = render_scene(entity_scene(ent, rng, lex, image_size), image_size, lex)
                (folder / f"{i:04d}.png").write_bytes(png_bytes(image))
                if progress is not None:
                    progress.update(1)
        written[split] = n * len(entities)
    return written
