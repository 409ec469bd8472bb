"""`serve`'s flags -> EngineConfig, each value checked before anything loads."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.engine.api import EngineConfig
from evdsearch.engine.cli.speed_options import speed_settings
from evdsearch.engine.validation import check_alpha
from evdsearch.errors import InvalidInput
from evdsearch.search_api import DEFAULT_ALPHA


def description_settings(args: argparse.Namespace) -> dict[str, Any]:
    """prefer_sources, max_descriptions (evdsearch.engine_options.add_description_options)."""
    if args.max_descriptions < 1:
        raise InvalidInput(f"--max-descriptions must be at least 1, got {args.max_descriptions}")
    return {"prefer_sources": args.prefer_sources, "max_descriptions": args.max_descriptions}


def fusion_settings(args: argparse.Namespace, default_alpha: float = DEFAULT_ALPHA) -> dict[str, Any]:
    """alpha, adaptive_alpha, template_ensemble (add_fusion_options; `default_alpha`: `serve --alpha`).
    How the engine then decides a query's weight: evdsearch.engine.alpha."""
    fixed = getattr(args, "fixed_alpha", None)
    ensemble = {"template_ensemble": getattr(args, "template_ensemble", True)}
    if fixed is None:
        try:
            return {"alpha": check_alpha(default_alpha), "adaptive_alpha": True, **ensemble}
        except InvalidInput as err:
            raise InvalidInput(f"--alpha: {err}") from None
    try:
        return {"alpha": check_alpha(fixed), "adaptive_alpha": False, **ensemble}
    except InvalidInput as err:
        raise InvalidInput(f"--fixed-alpha: {err}") from None


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The EngineConfig `serve` opens."""
    return EngineConfig(index_dir=args.index, kb_dir=args.kb, rewriter=args.rewriter, device=args.device,
                        model=args.model, pretrained=args.pretrained, text_encoder=args.text_encoder,
                        text_onnx=args.text_onnx, backend=args.backend, backend_uri=args.milvus_uri,
                        verify_checksums=not getattr(args, "skip_checksums", False),
                        **description_settings(args), **fusion_settings(args, args.alpha), **speed_settings(args))
