"""Attribute words of the shapes world (colour, shape, size, texture) with synonyms, found in text."""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = ("shape", "color", "size", "texture")

# value -> words that mean it. Values the world uses but this table lacks still match themselves.
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {
        "red": ("reddish", "crimson", "scarlet"), "orange": ("orangish",), "yellow": ("yellowish", "golden", "gold"),
        "green": ("greenish", "emerald", "lime"), "blue": ("bluish", "navy", "azure"), "cyan": ("teal", "turquoise"),
        "purple": ("purplish", "violet", "lilac", "magenta"), "pink": ("pinkish",), "brown": ("brownish",),
        "black": (), "white": (), "gray": ("grey", "greyish", "grayish", "silver"),
    },
    # The world draws flat shapes, so words for the solid a real object has count as its outline.
    "shape": {
        "circle": ("circular", "round", "disc", "disk", "sphere", "spherical", "ball", "orb", "globe"),
        "oval": ("ellipse", "elliptical", "oval-shaped", "egg-shaped"),
        "square": ("squared", "cube", "cubic", "box", "boxy", "block"),
        "rectangle": ("rectangular", "oblong"), "triangle": ("triangular", "pyramid", "cone", "conical"),
        "star": ("star-shaped", "starlike"), "hexagon": ("hexagonal", "six-sided"),
        "octagon": ("octagonal", "eight-sided"), "pentagon": ("pentagonal", "five-sided"),
        "diamond": ("rhombus", "diamond-shaped"), "cross": ("cross-shaped", "plus-shaped"),
        "heart": ("heart-shaped",), "crescent": ("crescent-shaped",), "ring": ("ring-shaped", "hoop", "donut"),
    },
    "size": {
        "small": ("tiny", "little", "miniature", "smaller", "smallest"), "medium": ("medium-sized", "mid-sized"),
        "large": ("big", "huge", "giant", "larger", "largest", "bigger", "enormous"),
    },
    "texture": {
        "striped": ("stripes", "stripe", "stripy", "banded", "bands"),
        "dotted": ("dots", "dot", "spotted", "spots", "spotty", "polka", "polka-dot", "speckled"),
        "checkered": ("checked", "chequered", "checkerboard", "checks"),
        "plain": ("solid", "uniform", "unpatterned", "plain-coloured", "plain-colored"),
    },
}
# Generic visual vocabulary: a sentence with these but no attribute word is visual yet uninformative.
VISUAL_WORDS = frozenset(
    "colour color colours colors coloured colored shape shapes size sizes texture textures pattern patterns "
    "surface shiny glossy matte bright dark pale shade shades outline edges edge corners corner sides "
    "appearance looks look visible tall short wide narrow thick thin".split())
_NEGATIONS = frozenset({"not", "no", "never", "without", "isn't", "aren't", "doesn't", "don't", "nor"})
# Idioms where an attribute word does not describe the object ("a small number of", "a little").
_IDIOMS = re.compile(r"\b(?:a (?:large|small|big) (?:number|amount|variety|range) of|a little|little bit|"
                     r"in (?:large|small) part|black and white (?:photo|image|picture))\b")
_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


@dataclass(frozen=True)
class Mention:
    """One attribute word found in a text, with every (category, value) it can mean ("round": circle, sphere)."""

    word: str  # the word as written (lower case)
    meanings: tuple[tuple[str, str], ...]  # (category, canonical value) pairs

    def verdict(self, signature: dict[str, frozenset[str]]) -> str:
        """"supports" when one meaning is an allowed value of the signature, "contradicts" when it
        names another value of a category the signature has, else "unrelated"."""
        if any(value in signature.get(category, ()) for category, value in self.meanings):
            return "supports"
        if any(category in signature for category, _ in self.meanings):
            return "contradicts"
        return "unrelated"


def canonical_value(category: str, value: str) -> str:
    """The SYNONYMS key for a value the world may spell differently ("grey" -> "gray")."""
    value = value.strip().lower()
    table = SYNONYMS.get(category, {})
    if value in table:
        return value
    return next((key for key, synonyms in table.items() if value in synonyms), value)


def canonical_signature(signature: dict[str, str | None]) -> dict[str, frozenset[str]]:
    """A world signature as allowed canonical values per category; a striped or dotted entity's
    `pattern_color` is an allowed colour too (a zebra is white with black stripes)."""
    allowed = {c: {canonical_value(c, str(signature[c]))} for c in CATEGORIES if signature.get(c)}
    if signature.get("pattern_color"):
        allowed.setdefault("color", set()).add(canonical_value("color", str(signature["pattern_color"])))
    return {c: frozenset(values) for c, values in allowed.items()}


def build_lexicon(world_values: dict[str, set[str]]) -> dict[str, list[tuple[str, str]]]:
    """word -> [(category, value)] over SYNONYMS plus every value the world uses (and plurals)."""
    lexicon: dict[str, list[tuple[str, str]]] = {}
    for category in CATEGORIES:
        table = dict(SYNONYMS.get(category, {}))
        for value in world_values.get(category, set()):
            table.setdefault(canonical_value(category, value), ())
        for value, synonyms in table.items():
            for word in {value, *synonyms}:
                for form in {word, word + "s", word + "es"}:
                    pairs = lexicon.setdefault(form, [])
                    if (category, value) not in pairs:
                        pairs.append((category, value))
    return lexicon


def find_mentions(text: str, lexicon: dict[str, list[tuple[str, str]]], ignore: set[str] = frozenset()
                  ) -> list[Mention]:
    """Attribute words in `text` (not negated, not in idioms, not in `ignore`, e.g. the entity's name)."""
    words = _WORD.findall(_IDIOMS.sub(" ", text.lower()))
    mentions = []
    for i, word in enumerate(words):
        if word in ignore or word not in lexicon or _NEGATIONS & set(words[max(0, i - 2):i]):
            continue
        mentions.append(Mention(word, tuple(lexicon[word])))
    return mentions


def has_visual_words(text: str) -> bool:
    return bool(VISUAL_WORDS & set(_WORD.findall(text.lower())))
