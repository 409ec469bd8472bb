"""The rewriter results table: text->image recall on the shapes world per setting, as Markdown + JSON + plot.

Each setting is one `evdsearch.evaluation.retrieval.run_retrieval` call (engine.rewriting + engine.fusion
inside, so numbers match the server); this module only chooses the settings and renders the table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evdsearch.atomic import write_json_atomic, write_text_atomic
from evdsearch.search_api import DEFAULT_ALPHA

FOCUS_KIND = "unseen_entity"  # the caption kind the rewriter is for


@dataclass
class Setting:
    """One row of the table."""

    label: str  # row name
    model: str  # CLIP checkpoint folder
    mode: str  # original | rewritten | fused
    rewriter: str  # none | template | rewriter folder


@dataclass
class EvalConfig:
    """Which models to compare; rows whose model is missing are left out."""

    data: str  # shapes world folder
    kb: str  # knowledge base folder
    clip: str  # the CLIP checkpoint (trained without rewrites)
    out: str  # report folder: rewriter_results.{md,json,png}
    sft: str | None = None  # SFT rewriter folder
    pro: str | None = None  # PRO rewriter folder
    finetuned_clip: str | None = None  # CLIP fine-tuned with the frozen (PRO) rewriter
    control_clip: str | None = None  # CLIP fine-tuned the same way with rewrite prob 0 (a control)
    split: str = "test"  # Karpathy split
    alpha: float = DEFAULT_ALPHA  # fusion weight (for entities without a calibrated weight when adaptive)
    adaptive_alpha: bool = True  # use the KB's calibrated per-entity weights when it has them
    device: str = "auto"  # auto | cpu | cuda
    rows: list[Setting] = field(default_factory=list)  # explicit rows (bench retrieval), else the above
    extra: dict[str, Any] = field(default_factory=dict)  # notes copied into the JSON

    def settings(self) -> list[Setting]:
        if self.rows:
            return list(self.rows)
        rows = [Setting("CLIP original", self.clip, "original", "none"),
                Setting("fused + template", self.clip, "fused", "template")]
        if self.sft:
            rows.append(Setting("fused + SFT rewriter", self.clip, "fused", self.sft))
        if self.pro:
            rows.append(Setting("fused + PRO rewriter", self.clip, "fused", self.pro))
        for label, clip in (("control fine-tune (p=0)", self.control_clip), ("fine-tuned CLIP", self.finetuned_clip)):
            if clip:
                rows.append(Setting(f"{label} original", clip, "original", "none"))
                if self.pro:
                    rows.append(Setting(f"{label} + fused PRO", clip, "fused", self.pro))
        return rows


def _row(setting: Setting, result: dict[str, Any]) -> dict[str, Any]:
    scores = result["modes"][setting.mode]
    by_kind = {kind: sub["t2i"] for kind, sub in scores["by_kind"].items()}
    return {**asdict(setting), "all": scores["t2i"], "by_kind": by_kind,
            "n": {kind: sub["n"] for kind, sub in scores["by_kind"].items()}, "timings": result["timings"]}


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run every setting; write the Markdown, JSON and bar plot; return the report."""
    from evdsearch.evaluation.retrieval import RetrievalConfig, run_retrieval

    rows = []
    for setting in cfg.settings():
        rcfg = RetrievalConfig(model=setting.model, data=cfg.data, split=cfg.split, modes=(setting.mode,),
                               alpha=cfg.alpha, adaptive_alpha=cfg.adaptive_alpha, kb=cfg.kb, rewriter=setting.rewriter, device=cfg.device)
        rows.append(_row(setting, run_retrieval(rcfg)))
        print(f"{setting.label}: {FOCUS_KIND} R@1 = {rows[-1]['by_kind'].get(FOCUS_KIND, {}).get('R@1')}", flush=True)
    report = {"benchmark": "rewriter", "data": cfg.data, "split": cfg.split, "focus_kind": FOCUS_KIND,
              "config": {k: v for k, v in asdict(cfg).items() if k != "extra"}, "rows": rows, **cfg.extra}
    out = Path(cfg.out)
    write_json_atomic(out / "rewriter_results.json", report)
    write_text_atomic(out / "rewriter_results.md", markdown(report))
    plot(report, out / "rewriter_results.png")
    return report


def markdown(report: dict[str, Any]) -> str:
    """One table: R@1 / R@5 for unseen-entity captions, R@1 for the other kinds and overall."""
    kinds = [k for k in ("unseen_entity", "seen_entity", "attribute") if any(k in r["by_kind"] for r in report["rows"])]
    header = ["setting", "unseen R@1", "unseen R@5"] + [f"{k} R@1" for k in kinds if k != FOCUS_KIND] + ["all R@1"]
    lines = [f"### Rewriter results: shapes world {report['split']} split, text->image", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in report["rows"]:
        focus = r["by_kind"].get(FOCUS_KIND, {})
        cells = [r["label"], _fmt(focus.get("R@1")), _fmt(focus.get("R@5"))]
        cells += [_fmt(r["by_kind"].get(k, {}).get("R@1")) for k in kinds if k != FOCUS_KIND]
        cells.append(_fmt(r["all"].get("R@1")))
        lines.append("| " + " | ".join(cells) + " |")
    n = report["rows"][0]["n"] if report["rows"] else {}
    lines += ["", f"Captions per kind: {', '.join(f'{k} {v}' for k, v in n.items())}. Each caption is ranked "
              f"against every {report['split']} image; fused = (1-alpha)*original + alpha*rewritten query, "
              f"alpha={report['config']['alpha']}.", ""]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def plot(report: dict[str, Any], path: Path) -> None:
    """Bar plot of unseen-entity R@1 per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in report["rows"]]
    values = [r["by_kind"].get(FOCUS_KIND, {}).get("R@1") or 0.0 for r in report["rows"]]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    bars = ax.barh(labels[::-1], values[::-1], color="#4c72b0")
    ax.bar_label(bars, fmt="%.3f", padding=3)
    ax.set_xlabel(f"text->image R@1, {FOCUS_KIND} captions ({report['split']})")
    ax.set_xlim(0, max(values + [0.01]) * 1.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
