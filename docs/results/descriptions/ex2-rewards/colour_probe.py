"""Does SmolLM2-135M know, or ever say, the colour an entity has in a shapes world? (docs/descriptions.md)

Two counts against the world's truth (entities.json): greedy answers to "What is the colour of a X?" for
every entity, and temperature-1.0 answers to the 25 EX2 questions for every third entity, the way GRPO
explores. A colour counts as right when the first colour word of the answer is the entity's colour.
usage: python colour_probe.py WORLD_DIR > colour_probe.txt
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from evdsearch.evaluation.classification import load_templates
from evdsearch.training.llm.base import ChatRequest
from evdsearch.training.llm.local import TransformersChatLLM, resolve_local_model


def colour_counts(answers: list[tuple[str, str]], truth: dict[str, str]) -> dict[str, int]:
    counts = {"right": 0, "wrong": 0, "none": 0}
    for entity, text in answers:
        said = [w for w in re.findall("[a-z]+", text.lower()) if w in set(truth.values())]
        counts["none" if not said else "right" if said[0] == truth[entity] else "wrong"] += 1
    return counts


def answer(llm: TransformersChatLLM, asks: list[tuple[str, str]], tokens: int, temperature: float) -> list[str]:
    out: list[str] = []
    for start in range(0, len(asks), 64):
        out += [r.text for r in llm.chat_batch([ChatRequest([{"role": "user", "content": q}], tokens, temperature,
                                                            1000 + start + i)
                                                for i, (_, q) in enumerate(asks[start : start + 64])])]
    return out


def main(world: str) -> None:
    entities = json.loads((Path(world) / "entities.json").read_text(encoding="utf-8"))
    truth = {e["name"]: e["signature"]["color"] for e in entities}
    names = sorted(truth)
    llm = TransformersChatLLM(resolve_local_model("smollm2"), device="cpu", threads=2)
    asks = [(n, f"What is the colour of a {n}?") for n in names]
    counts = colour_counts(list(zip(names, answer(llm, asks, 24, 0.0), strict=True)), truth)
    print(f"greedy, 'What is the colour of a X?', {len(asks)} entities: {counts}")
    questions = load_templates("ex2_question_templates")
    asks = [(n, q.format(n)) for n in names[::3] for q in questions]
    counts = colour_counts([(n, t) for (n, _), t in zip(asks, answer(llm, asks, 16, 1.0), strict=True)], truth)
    print(f"temperature 1.0, the 25 EX2 questions, {len(names[::3])} entities, {len(asks)} answers: {counts}")


if __name__ == "__main__":
    main(sys.argv[1])
