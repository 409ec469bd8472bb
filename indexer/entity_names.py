"""Entity name normalisation: the one key under which KB entities are stored and looked up.

`normalize_entity` works word by word, so normalising an n-gram equals joining its normalised
words: the engine may normalise a query's tokens once and match KB names on token runs.
"""

from __future__ import annotations

import re
import unicodedata

NORMALIZER_VERSION = 1  # stored in the KB; bump when the rules change, old KBs must be re-imported

# Irregular plurals, and regular-looking ones the suffix rules below would get wrong.
IRREGULAR: dict[str, str] = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
    "geese": "goose", "teeth": "tooth", "feet": "foot", "oxen": "ox", "cacti": "cactus",
    "fungi": "fungus", "knives": "knife", "wives": "wife", "lives": "life", "leaves": "leaf",
    "wolves": "wolf", "shelves": "shelf", "halves": "half", "loaves": "loaf", "calves": "calf",
    "thieves": "thief", "scarves": "scarf", "buses": "bus", "gases": "gas", "lenses": "lens",
    "fuses": "fuse", "muses": "muse", "excuses": "excuse", "movies": "movie", "cookies": "cookie",
    "brownies": "brownie", "hoodies": "hoodie", "zombies": "zombie", "calories": "calorie",
    "smoothies": "smoothie", "selfies": "selfie", "pies": "pie", "ties": "tie", "lies": "lie",
    "shoes": "shoe", "toes": "toe", "canoes": "canoe", "oboes": "oboe", "hoes": "hoe",
    "tiptoes": "tiptoe", "horseshoes": "horseshoe", "snowshoes": "snowshoe",
    "headaches": "headache", "moustaches": "moustache", "mustaches": "mustache", "niches": "niche",
    "caches": "cache", "avalanches": "avalanche",
}

# Words that end like plurals but are singular (or have no singular worth mapping to).
INVARIANT: frozenset[str] = frozenset({
    "news", "series", "species", "means", "physics", "mathematics", "athletics", "gymnastics",
    "politics", "economics", "jeans", "pants", "trousers", "shorts", "scissors", "binoculars",
    "pajamas", "pyjamas", "clothes", "sunglasses", "eyeglasses", "goggles", "lens", "canvas",
    "atlas", "christmas", "always", "perhaps", "mars", "paris", "texas", "kansas", "bias",
})

_KEEP_ENDINGS = ("ss", "us", "is")  # glass, bus, octopus, tennis: already singular
_WORD_RE = re.compile(r"\w+")


def singularize(word: str) -> str:
    """Simple English plural → singular for one lower-case word; unknown shapes are left alone."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) <= 3 or word in INVARIANT or not word.endswith("s") or word.endswith(_KEEP_ENDINGS):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"  # cherries → cherry
    if word.endswith(("sses", "shes", "ches", "xes", "zzes", "oes")):
        return word[:-2]  # glasses → glass, dishes → dish, boxes → box, tomatoes → tomato
    if word.endswith("uses") and not word.endswith(("ouses", "auses")):
        return word[:-2]  # viruses → virus; houses, causes keep their e
    return word[:-1]


def _strip_punctuation(text: str) -> str:
    # Apostrophes vanish (so "mcdonald's" stays one word); other punctuation separates words.
    text = text.replace("'", "").replace("\u2019", "")
    return "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)


def normalize_entity(name: str) -> str:
    """Lower case, strip punctuation, collapse whitespace, singularise each word."""
    text = _strip_punctuation(unicodedata.normalize("NFKC", name).casefold())
    return " ".join(singularize(word) for word in _WORD_RE.findall(text))


def display_name(name: str) -> str:
    """The name as given, with its whitespace collapsed: what listings show."""
    return " ".join(name.split())
