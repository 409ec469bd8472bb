"""`--fixed-alpha`: the flag that turns adaptive fusion off, shared by `serve` and `demo --index`."""

from __future__ import annotations

import argparse
from typing import Any


def add_fusion_options(p: argparse.ArgumentParser) -> None:
    """Adaptive fusion is the default whenever the KB holds calibrated weights (`evdsearch kb calibrate`)."""
    p.add_argument("--fixed-alpha", type=float, metavar="A",
                   help="one weight of the rewritten query for every query (EvdCLIP's fixed average, 0.5), "
                        "ignoring the KB's calibrated per-entity weights; a request's alpha still overrides")


def fusion_settings(args: argparse.Namespace, default_alpha: float = 0.5) -> dict[str, Any]:
    """The EngineConfig fields (alpha, adaptive_alpha) those options set, checked."""
    from evdsearch.engine.validation import check_alpha
    from evdsearch.errors import InvalidInput

    fixed = getattr(args, "fixed_alpha", None)
    if fixed is None:
        return {"alpha": check_alpha(default_alpha), "adaptive_alpha": True}
    try:
        return {"alpha": check_alpha(fixed), "adaptive_alpha": False}
    except InvalidInput as err:
        raise InvalidInput(f"--fixed-alpha: {err}") from None
