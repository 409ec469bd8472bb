"""EX2 inspection: is a description spurious or informative, visual or non-visual?

Two labellers. Ground truth in the shapes world (training/evd/label.py): a description is *visual*
when it names an appearance attribute value (shape, colour, size, texture; right or wrong) and
*informative* when it names a true one of its entity and none that contradicts it; everything
else (vague "its shape and colour", non-visual facts, wrong attributes) carries nothing CLIP can
use for the concept here, so counts as spurious. An LLM judge, when configured, answers the same
two questions in words; answers that cannot be parsed are counted as malformed, never guessed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

JUDGE_PROMPT = (
    'Concept: {concept}\nDescription: "{description}"\n'
    "Answer two questions about the description.\n"
    "1. Does it say something specific about the {concept} (informative), or nothing useful about it (spurious)?\n"
    "2. Does it describe what the {concept} looks like (visual), or something else (non-visual)?\n"
    "Reply on one line in the form: informative|spurious, visual|non-visual"
)
CELLS = ("informative/visual", "informative/non-visual", "spurious/visual", "spurious/non-visual")

_NON_VISUAL = re.compile(r"\b(?:non[\s_-]?visual|not\s+visual)\b")
_VISUAL = re.compile(r"\bvisual\b")
_SPURIOUS = re.compile(r"\b(?:spurious|uninformative|non[\s_-]?informative|not\s+informative)\b")
_INFORMATIVE = re.compile(r"\binformative\b")


@dataclass(frozen=True)
class Verdict:
    """Two yes/no labels; None where the answer did not decide (malformed)."""

    informative: bool | None
    visual: bool | None

    @property
    def malformed(self) -> bool:
        return self.informative is None or self.visual is None

    @property
    def cell(self) -> str:
        return f"{'informative' if self.informative else 'spurious'}/{'visual' if self.visual else 'non-visual'}"


def _axis(text: str, negative: re.Pattern[str], positive: re.Pattern[str]) -> bool | None:
    """True / False when exactly one side is named; None when neither or both are."""
    n_neg = len(negative.findall(text))
    n_pos = len(positive.findall(negative.sub(" ", text)))
    if bool(n_neg) == bool(n_pos):
        return None
    return n_pos > 0


def parse_judge(answer: str) -> Verdict:
    """Read "informative, visual" (any case, punctuation, extra words) or JSON {"informative": .., "visual": ..}."""
    text = (answer or "").strip()
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        obj = None
    if isinstance(obj, dict):
        inf, vis = obj.get("informative"), obj.get("visual")
        return Verdict(inf if isinstance(inf, bool) else None, vis if isinstance(vis, bool) else None)
    low = text.lower()
    return Verdict(_axis(low, _SPURIOUS, _INFORMATIVE), _axis(low, _NON_VISUAL, _VISUAL))


def world_verdict(label: str) -> Verdict:
    """Ground truth from a training/evd/label.py label (see the module docstring)."""
    return Verdict(informative=label == "visual_correct", visual=label in ("visual_correct", "visual_wrong"))


def breakdown(verdicts: list[Verdict]) -> dict[str, Any]:
    """Counts and fractions of the four cells (malformed counted apart)."""
    ok = [v for v in verdicts if not v.malformed]
    cells = Counter(v.cell for v in ok)
    return {"n": len(verdicts), "malformed": len(verdicts) - len(ok),
            "counts": {c: cells[c] for c in CELLS},
            "fractions": {c: round(cells[c] / len(ok), 4) if ok else 0.0 for c in CELLS}}


def agreement(judge: list[Verdict], truth: list[Verdict]) -> dict[str, Any]:
    """Per-axis agreement of the judge with ground truth, over answers the judge got right in form."""
    pairs = [(j, t) for j, t in zip(judge, truth, strict=True) if not j.malformed]
    if not pairs:
        return {"n": 0, "informative": None, "visual": None, "both": None}
    n = len(pairs)
    return {"n": n,
            "informative": round(sum(j.informative == t.informative for j, t in pairs) / n, 4),
            "visual": round(sum(j.visual == t.visual for j, t in pairs) / n, 4),
            "both": round(sum(j.cell == t.cell for j, t in pairs) / n, 4)}


def ask_judge(llm: Any, records: list[dict[str, Any]], max_new_tokens: int = 16,
              batch_size: int = 16) -> list[str]:
    """The judge's raw answer per record (greedy)."""
    from evdsearch.training.llm.base import ChatRequest, chat_many

    answers: list[str] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        requests = [ChatRequest([{"role": "user", "content": JUDGE_PROMPT.format(
            concept=r["entity"], description=r["description"])}], max_new_tokens) for r in chunk]
        answers += [a.text for a in chat_many(llm, requests)]
    return answers
