"""Both regimes for DEQR: captions whose entity CLIP knows (scored as written) and stand-ins for ones it does not.

Training captions only name entities the retriever was trained on, so scoring them as written makes
"keep the caption" win nearly always, and masking every name (the old default) makes "rewrite" win
nearly always. With regime `both`, a share of captions (`stand_in_share`) has each entity name
replaced by a made-up word the retriever has never seen — in the caption, the rewriter input and
every candidate — so rewriting is scored where the name is unknown, while the rest keep their real
names, so "keep" wins where the name already works. An entity whose calibrated KB weight says CLIP
does not know it (weight >= `unknown_alpha`) is scored with its name masked, as before.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

REGIMES = ("masked", "unmasked", "both")  # DeqrConfig.regime
KNOWN, STAND_IN, MASKED = "known", "stand-in", "masked"  # per-record regime labels in deqr.jsonl
UNKNOWN_ALPHA = 0.5  # calibrated weight at or above which an entity counts as unknown to CLIP


def nonce_word(rng: random.Random, taken: set[str]) -> str:
    """A made-up word (three syllables) that is no entity name and was not handed out before."""
    from evdsearch.evaluation.fusion_fit import nonce_name

    return nonce_name(rng, taken)


def with_stand_ins(result: Any, rng: random.Random, taken: set[str]) -> Any:
    """A RewriteResult whose entities are renamed to made-up words: query, mentions and descriptions."""
    names = {entity: nonce_word(rng, taken) for entity in result.entities}
    text, mentions, cursor = "", [], 0
    for m in sorted(result.mentions, key=lambda m: m.start):
        text += result.query[cursor : m.start]
        start = len(text)
        text += names[m.entity]
        mentions.append(replace(m, entity=names[m.entity], text=names[m.entity], start=start, end=len(text)))
        cursor = m.end
    text += result.query[cursor:]
    return replace(result, query=text, rewritten=text, entities=[names[e] for e in result.entities],
                   descriptions={names[e]: ds for e, ds in result.descriptions.items()}, mentions=mentions)


def assign(chosen: list[tuple[int, int, Any]], regime: str, share: float, weights: dict[str, float],
           seed: int, taken: set[str]) -> list[tuple[int, int, Any, str]]:
    """(row, sentence, RewriteResult, regime label) per caption; stand-ins get renamed entities."""
    if regime not in REGIMES:
        raise ValueError(f"unknown DEQR regime {regime!r}; use one of {', '.join(REGIMES)}")
    rng = random.Random(seed + 2)
    out = []
    for row, j, result in chosen:
        if regime == "masked":
            out.append((row, j, result, MASKED))
        elif regime == "unmasked":
            out.append((row, j, result, KNOWN))
        elif any(weights.get(e, 0.0) >= UNKNOWN_ALPHA for e in result.entities):
            out.append((row, j, result, MASKED))
        elif rng.random() < share:
            out.append((row, j, with_stand_ins(result, rng, taken), STAND_IN))
        else:
            out.append((row, j, result, KNOWN))
    return out
