"""`evdsearch bench quality`: recall by caption kind through SearchEngine.search_batch, over several worlds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.search_api import DEFAULT_ALPHA

MACHINE = "2-core CPU dev box"  # label on the plot


def register(tree: Any) -> None:
    p = tree.add("bench", "quality",
                 "R@1/R@5 by caption kind through the serving path: original, fixed vs adaptive fusion, rewriters")
    p.add_argument("--world", required=True, metavar="ROOT[,ROOT...]",
                   help="comma-separated world roots; relative --data/--clip/--kb/--rewriter/--index paths are "
                        "resolved inside each root (a root that is itself a shapes world is its own --data)")
    p.add_argument("--data", default="world", help="shapes world folder inside each root (default: world)")
    p.add_argument("--clip", default="clip", help="CLIP checkpoint inside each root (default: clip)")
    p.add_argument("--kb", action="append", metavar="[LABEL=]KB_DIR",
                   help="calibrated knowledge base (repeat for several calibrations, e.g. "
                        "--kb train+val=fusion/kb_tv --kb train=fusion/kb_t); the first serves the fixed rows")
    p.add_argument("--rewriter", action="append", metavar="[LABEL=]SPEC",
                   help="none | template | rewriter folder; repeat (default: template). A trained rewriter is "
                        "ensembled with the template as `serve` does (q' = mean embedding of both rewrites)")
    p.add_argument("--rewriter-alone", action="append", default=[], metavar="[LABEL=]FOLDER",
                   help="a trained rewriter encoded on its own, without the template ensemble "
                        "(`serve --no-template-ensemble`); repeat")
    p.add_argument("--index", default=None,
                   help="index folder of the test images inside each root (default: OUT/index/ROOTNAME; built "
                        "with evdsearch.indexer when missing)")
    p.add_argument("--compare", action="append", default=[], metavar="ROW_A,ROW_B",
                   help="extra paired McNemar test between two rows, e.g. 'fused adaptive[train+val] + PRO,"
                        "fused adaptive[train+val] + SFT'")
    p.add_argument("--out", required=True, help="report folder (quality.md, quality.json, quality.png)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"the fixed weight of the fixed-alpha rows ({DEFAULT_ALPHA:g})")
    p.add_argument("--split", default="test")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.set_defaults(run=run)


def _labelled(spec: str) -> tuple[str, str]:
    from evdsearch.benchmarks.retrieval_cli import labelled

    return labelled(spec)


def _inside(root: Path, path: str) -> str:
    if path in ("none", "template"):
        return path
    return str(Path(path) if Path(path).is_absolute() else root / path)


def worlds_from_args(args: argparse.Namespace) -> list[Any]:
    """Flags -> WorldSpecs, every path checked."""
    from evdsearch.benchmarks.quality import WorldSpec
    from evdsearch.errors import InvalidInput, NotFound

    if not args.kb:
        raise InvalidInput("give at least one --kb (a knowledge base calibrated with `evdsearch kb calibrate`)")
    if not 0.0 <= args.alpha <= 1.0:
        raise InvalidInput("--alpha must be between 0 and 1")
    if args.bootstrap < 10:
        raise InvalidInput("--bootstrap must be at least 10")
    kbs = [_labelled(s) for s in args.kb]
    rewriters = [_labelled(s) for s in (args.rewriter or ([] if args.rewriter_alone else ["template"]))]
    alone = [_labelled(s) for s in args.rewriter_alone]
    labels = [label for label, _ in rewriters + alone]
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"rewriter labels must differ (got {', '.join(labels)}): name them LABEL=SPEC")
    worlds = []
    roots = [Path(text.strip()) for text in args.world.split(",")]
    for root, name in zip(roots, _world_names(roots), strict=True):
        if not root.is_dir():
            raise NotFound(f"--world {root}: no such folder")
        data = root if any(root.glob("dataset_*.json")) else root / args.data
        index = _inside(root, args.index) if args.index else str(Path(args.out) / "index" / name.replace("/", "-"))
        spec = WorldSpec(name=name, data=str(data), clip=_inside(root, args.clip),
                         kbs={label: _inside(root, path) for label, path in kbs},
                         rewriters={label: _inside(root, spec) for label, spec in rewriters + alone}, index=index,
                         alone=tuple(label for label, _ in alone))
        for what in [spec.data, spec.clip, *spec.kbs.values(),
                     *(v for v in spec.rewriters.values() if v not in ("none", "template"))]:
            if not Path(what).exists():
                raise NotFound(f"{what} does not exist (world {root})")
        worlds.append(spec)
    return worlds


def run(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.quality import QualityConfig, run_quality
    from evdsearch.benchmarks.quality_report import markdown
    from evdsearch.errors import InvalidInput

    comparisons = []
    for text in args.compare:
        a, sep, b = text.partition(",")
        if not sep:
            raise InvalidInput(f"--compare needs two row labels separated by a comma, got {text!r}")
        comparisons.append((a.strip(), b.strip()))
    cfg = QualityConfig(worlds=worlds_from_args(args), out=args.out, alpha=args.alpha, split=args.split,
                        bootstrap=args.bootstrap, device=args.device, machine=MACHINE)
    report = run_quality(cfg, comparisons)
    print(markdown(report))
    out = Path(args.out)
    for name in ("quality.md", "quality.json", "quality.png"):
        print(f"{name.split('.')[1]}: {out / name}")
    return 0


def _world_names(roots: list[Path]) -> list[str]:
    """Each root's folder name, with its parent's where names repeat (s7311/kb-llm, s7312/kb-llm): a world's
    name also names its index folder, so two worlds must never share one."""
    names = [root.name for root in roots]
    if len(set(names)) == len(names):
        return names
    return [f"{root.resolve().parent.name}/{root.name}" for root in roots]
