"""`--fixed-alpha` and `--no-template-ensemble`: the flags that turn adaptive fusion and the template ensemble
off, shared by `serve` and `demo --index`."""

from __future__ import annotations

import argparse
from typing import Any


def add_fusion_options(p: argparse.ArgumentParser) -> None:
    """Adaptive fusion is the default whenever the KB holds calibrated weights (`evdsearch kb calibrate`)."""
    p.add_argument("--fixed-alpha", type=float, metavar="A",
                   help="one weight of the rewritten query for every query (EvdCLIP's fixed average, 0.5), "
                        "ignoring the KB's calibrated per-entity weights; a request's alpha still overrides")
    add_ensemble_option(p)


def add_ensemble_option(p: argparse.ArgumentParser) -> None:
    """On by default: with a trained rewriter, q' averages its rewrite's and the template's embeddings."""
    p.add_argument("--no-template-ensemble", dest="template_ensemble", action="store_false",
                   help="with a trained rewriter, encode its rewrite alone (default: q' is the mean embedding of "
                        "its rewrite and the template's, which outvotes a rewrite with the wrong colour or shape)")


def fusion_settings(args: argparse.Namespace, default_alpha: float = 0.5) -> dict[str, Any]:
    """The EngineConfig fields (alpha, adaptive_alpha, template_ensemble) those options set, checked."""
    from evdsearch.engine.validation import check_alpha
    from evdsearch.errors import InvalidInput

    fixed = getattr(args, "fixed_alpha", None)
    ensemble = {"template_ensemble": getattr(args, "template_ensemble", True)}
    if fixed is None:
        return {"alpha": check_alpha(default_alpha), "adaptive_alpha": True, **ensemble}
    try:
        return {"alpha": check_alpha(fixed), "adaptive_alpha": False, **ensemble}
    except InvalidInput as err:
        raise InvalidInput(f"--fixed-alpha: {err}") from None
