"""Flickr-style captions: attribute captions in everyday synonyms, and captions that name entities."""

from __future__ import annotations

import random
from typing import Any

from evdsearch.training.shapes_world.scene import Scene
from evdsearch.training.shapes_world.vocab import Lexicon

CAPTIONS_PER_IMAGE = 5
ENTITY_CAPTIONS = 2  # of the five, when the image has a nameable entity object

ONE = ["{a}", "{a} on a {bg} background", "a picture of {a}", "there is {a} in the picture",
       "{a} against a {bg} background", "an image showing {a}"]
TWO = ["{a} {rel} {b}", "{a} and {b}", "{a} {rel} {b} on a {bg} background", "there is {a} {rel} {b}",
       "a picture of {a} {rel} {b}"]
THREE = ["{a} {rel} {b}, and {c}", "{a}, {b} and {c}", "three things: {a}, {b} and {c}",
         "{a} {rel} {b} and {c} on a {bg} background"]


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def relation(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Where object `a` is relative to `b`: left, right, above or below (the larger offset wins)."""
    ax, ay = (a["bbox"][0] + a["bbox"][2]) / 2, (a["bbox"][1] + a["bbox"][3]) / 2
    bx, by = (b["bbox"][0] + b["bbox"][2]) / 2, (b["bbox"][1] + b["bbox"][3]) / 2
    if abs(ax - bx) >= abs(ay - by):
        return "left" if ax < bx else "right"
    return "above" if ay < by else "below"


def attribute_phrase(obj: dict[str, Any], rng: random.Random, lex: Lexicon, detailed: bool) -> str:
    """E.g. "little striped red disc", "big round blue object with white dots" (no article).

    Colour and shape are always said; size and texture always when `detailed`, often otherwise, so
    a caption picks out its image among many.
    """
    shape = lex.shapes[obj["shape"]]
    color = rng.choice(lex.colors[obj["color"]]["words"])
    words = []
    if detailed or rng.random() < 0.7:
        words.append(rng.choice(lex.sizes[obj["size"]]["words"]))
    suffix = ""
    texture = lex.textures[obj["texture"]]
    if obj["texture"] == "plain":
        if rng.random() < 0.1:
            words.append(rng.choice(texture["adjectives"]))
    elif detailed or rng.random() < 0.75:
        if texture["phrases"] and rng.random() < 0.5:
            pc = rng.choice(lex.colors[obj["pattern_color"]]["words"])
            suffix = " " + rng.choice(texture["phrases"]).format(pc=pc)
        else:
            words.append(rng.choice(texture["adjectives"]))
    words.append(color)
    if rng.random() < 0.3:
        adjective = rng.choice(shape["adjectives"])
        nouns = [n for n in lex.adjective_nouns if not (adjective.endswith("shaped") and n == "shape")]
        words += [adjective, rng.choice(nouns)]  # no "heart-shaped shape"
    else:
        words.append(rng.choice(shape["nouns"]))
    return " ".join(words) + suffix


def caption(scene: Scene, rng: random.Random, lex: Lexicon, named: set[str]) -> str:
    """One sentence about all objects; objects whose entity is in `named` are called by name."""
    objects = list(scene.objects)
    rng.shuffle(objects)
    detailed = len(objects) == 1
    phrases = [with_article(o["entity"]) if o["entity"] in named else
               with_article(attribute_phrase(o, rng, lex, detailed)) for o in objects]
    template = rng.choice({1: ONE, 2: TWO, 3: THREE}[len(objects)])
    fields = dict(zip("abc", phrases, strict=False))
    if len(objects) > 1:
        fields["rel"] = rng.choice(lex.relations[relation(objects[0], objects[1])])
    fields["bg"] = rng.choice(lex.backgrounds[scene.background]["words"])
    text = template.format(**fields)
    return text[0].upper() + text[1:] + "."


def make_captions(scene: Scene, rng: random.Random, lex: Lexicon, split: str,
                  seen: set[str]) -> list[dict[str, Any]]:
    """Five captions with `kind` and `entities`.

    Train captions name only seen entities; val/test captions name every entity in the image, so
    unseen names are met for the first time at evaluation.
    """
    present = [o["entity"] for o in scene.objects if o["entity"]]
    nameable = set(present) if split != "train" else {e for e in present if e in seen}
    n_entity = ENTITY_CAPTIONS if nameable else 0
    out = []
    for i in range(CAPTIONS_PER_IMAGE):
        named = nameable if i < n_entity else set()
        names = sorted(named)
        if not names:
            kind = "attribute"
        else:
            kind = "unseen_entity" if any(n not in seen for n in names) else "seen_entity"
        out.append({"raw": caption(scene, rng, lex, named), "kind": kind, "entities": names})
    rng.shuffle(out)
    return out
