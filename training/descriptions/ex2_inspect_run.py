"""`evdsearch train ex2-inspect`: world-truth labels, optional LLM judge, breakdown and agreement."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from evdsearch.evaluation.classification import read_jsonl
from evdsearch.training.descriptions.ex2_inspect import (
    agreement,
    ask_judge,
    breakdown,
    parse_judge,
    world_verdict,
)


def default_judge() -> str:
    """The OpenAI-compatible endpoint when one is configured in the environment, else no judge."""
    return "openai" if os.environ.get("EVDSEARCH_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL") else "none"


def run_inspect(descriptions: str, world: str, judge: str = "none", limit: int | None = None,
                threads: int = 2) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from evdsearch.training.evd.label import label_records, load_world_entities

    records = read_jsonl(descriptions)[:limit]
    _, labelled = label_records(records, load_world_entities(world))
    truth = [world_verdict(r["label"]) for r in labelled]
    result: dict[str, Any] = {"descriptions": descriptions, "world_folder": world,
                              "world_labels": dict(Counter(r["label"] for r in labelled)),
                              "world": breakdown(truth), "judge": None}
    if labelled and "split" in labelled[0]:  # EX2 output: train vs held-out concepts
        for split in ("train", "held_out"):
            result[f"world_{split}"] = breakdown([t for t, r in zip(truth, labelled, strict=True)
                                                  if r.get("split") == split])
    if judge != "none":
        from evdsearch.training.llm.factory import create_llm

        llm = create_llm(judge, device="cpu", threads=threads)
        answers = ask_judge(llm, labelled)
        verdicts = [parse_judge(a) for a in answers]
        for r, a, v in zip(labelled, answers, verdicts, strict=True):
            r["judge_answer"], r["judge"] = a, None if v.malformed else v.cell
        result["judge"] = {"model": llm.name, **breakdown(verdicts), "agreement": agreement(verdicts, truth),
                           "malformed_examples": [a for a, v in zip(answers, verdicts, strict=True)
                                                  if v.malformed][:5]}
    for r, t in zip(labelled, truth, strict=True):
        r["truth"] = t.cell
    return result, labelled


def report_tables(result: dict[str, Any]) -> list[Any]:
    from evdsearch.plots import Table

    cols = [("world truth", result["world"])] + [(k.replace("world_", "truth, "), result[k])
                                                 for k in ("world_train", "world_held_out") if k in result]
    if result["judge"]:
        cols.append((f"judge ({result['judge']['model']})", result["judge"]))
    cells = list(cols[0][1]["counts"])
    rows = [[c] + [f"{b['counts'][c]} ({100 * b['fractions'][c]:.0f}%)" for _, b in cols] for c in cells]
    rows.append(["malformed"] + [str(b["malformed"]) for _, b in cols])
    note = f"world labels: {result['world_labels']}"
    if result["judge"]:
        note += f"; judge agreement with world truth: {result['judge']['agreement']}"
    return [Table("EX2 inspection: spurious / informative x visual / non-visual", ["category"] + [n for n, _ in cols],
                  rows, note)]


def bar_plot(result: dict[str, Any]) -> Any:
    import numpy as np

    from evdsearch.plots import new_figure

    fig, (ax,) = new_figure()
    cols = [("world truth", result["world"])] + ([("judge", result["judge"])] if result["judge"] else [])
    cells = list(result["world"]["counts"])
    x = np.arange(len(cells))
    width = 0.8 / len(cols)
    for i, (name, b) in enumerate(cols):
        ax.bar(x + i * width, [100 * b["fractions"][c] for c in cells], width, label=name)
    ax.set_xticks(x + 0.4 - width / 2, cells, rotation=15)
    ax.set_ylabel("% of descriptions")
    ax.legend()
    return fig
