"""WaffleCLIP's random-words baseline (arXiv 2306.07282): the class name plus random word / character strings."""

from __future__ import annotations

import functools
import gzip
import random
import string
from collections.abc import Sequence

from evdsearch.evaluation.zeroshot import with_name

WORDS_PER_DESCRIPTOR = 3  # random words in one descriptor (WaffleCLIP's descriptors are a few words long)


@functools.lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """Whole lower-case words of 3-10 letters from CLIP's BPE vocabulary (ships with open_clip): a broad,
    content-free word list, as WaffleCLIP samples from a general English vocabulary."""
    from open_clip.tokenizer import default_bpe

    with gzip.open(default_bpe(), "rt", encoding="utf-8") as fh:
        merges = fh.read().split("\n")[1 : 49152 - 256 - 2 + 1]  # the merges CLIP's tokenizer uses
    words = {"".join(m.split()).removesuffix("</w>") for m in merges if m.endswith("</w>")}
    return tuple(sorted(w for w in words if w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 10))


def waffle_descriptors(n: int, seed: int = 0, words: int = WORDS_PER_DESCRIPTOR,
                       vocab: Sequence[str] | None = None) -> list[str]:
    """N random descriptors, alternately random words and random characters of the same word lengths
    (WaffleCLIP pairs each word sequence with a character sequence shaped like it)."""
    if n < 1:
        raise ValueError("a random-words set needs at least one descriptor per class")
    rng = random.Random(seed)
    vocab = vocab or vocabulary()
    out: list[str] = []
    while len(out) < n:
        chosen = rng.sample(list(vocab), words)
        out.append(" ".join(chosen))
        out.append(" ".join("".join(rng.choice(string.ascii_lowercase) for _ in w) for w in chosen))
    return out[:n]


def waffle_texts(classes: Sequence[str], n: int, seed: int = 0) -> list[list[str]]:
    """Per class: its name joined to each of the same N random descriptors ("NAME which has ...", the join
    the description sets' "+name" variants use), so only the ensembling differs from the name alone."""
    descriptors = waffle_descriptors(n, seed)
    return [[with_name(name, d) for d in descriptors] for name in classes]
