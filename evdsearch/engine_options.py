"""Flags that shape a served engine, shared by `serve`, `demo --index` and `kb calibrate` (argparse only).

`serve` turns them into an EngineConfig (evdsearch.engine.cli.config); the demo hands them on to the
`evdsearch serve` it starts (`forward_engine_options`).
"""

from __future__ import annotations

import argparse

from evdsearch.search_api import DEFAULT_ALPHA

ALPHA_HELP = (f"weight of the rewritten query for queries whose entities have no calibrated weight (default "
              f"{DEFAULT_ALPHA:g}); --fixed-alpha instead gives every query one weight and ignores the calibration; "
              f"a request's own alpha always wins")


def add_description_options(p: argparse.ArgumentParser) -> None:
    """How the engine picks each entity's descriptions."""
    p.add_argument("--prefer-sources", type=source_list, default=(), metavar="SRC[,SRC]",
                   help="KB sources whose descriptions go first, in this order (e.g. ift,ex2); then by score")
    p.add_argument("--max-descriptions", type=int, default=3, metavar="N",
                   help="descriptions per entity handed to the rewriter (default 3)")


def source_list(text: str) -> tuple[str, ...]:
    """"ift, ex2" -> ("ift", "ex2")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_fusion_options(p: argparse.ArgumentParser) -> None:
    """Adaptive fusion is the default whenever the KB holds calibrated weights (`evdsearch kb calibrate`)."""
    p.add_argument("--fixed-alpha", type=float, metavar="A",
                   help=f"one weight of the rewritten query for every query (EvdCLIP's fixed average, "
                        f"{DEFAULT_ALPHA:g}), ignoring the KB's calibrated per-entity weights; a request's alpha "
                        f"still overrides")
    add_ensemble_option(p)


def add_ensemble_option(p: argparse.ArgumentParser) -> None:
    """On by default: with a trained rewriter, q' averages its rewrite's and the template's embeddings."""
    p.add_argument("--no-template-ensemble", dest="template_ensemble", action="store_false",
                   help="with a trained rewriter, encode its rewrite alone (default: q' is the mean embedding of "
                        "its rewrite and the template's, which outvotes a rewrite with the wrong colour or shape)")


def forward_engine_options(args: argparse.Namespace) -> list[str]:
    """The description and fusion flags of `args` as command-line words, for a `serve` started on their behalf."""
    words = ["--max-descriptions", str(args.max_descriptions)]
    if args.prefer_sources:
        words += ["--prefer-sources", ",".join(args.prefer_sources)]
    if args.fixed_alpha is not None:
        words += ["--fixed-alpha", repr(args.fixed_alpha)]
    if not args.template_ensemble:
        words.append("--no-template-ensemble")
    return words
