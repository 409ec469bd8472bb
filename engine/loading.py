"""Loading an engine's parts: index store, the CLIP its manifest names, knowledge base, rewriter."""

from __future__ import annotations

import logging
from typing import Any

from evdsearch.engine.api import EngineConfig
from evdsearch.errors import IncompatibleArtifact, ModelUnavailable, NotFound

_log = logging.getLogger(__name__)


def load_index_clip(config: EngineConfig, manifest: Any) -> Any:
    """config.model when given, else the `model` / `pretrained` recorded in the index manifest."""
    from evdsearch.clip_models import load_clip

    if config.model:
        return load_clip(config.model, config.pretrained, device=config.device)
    model, pretrained = manifest.model, manifest.pretrained or None
    if not model:
        raise IncompatibleArtifact(f"index {config.index_dir} names no model in manifest.json; give one explicitly")
    try:
        return load_clip(model, pretrained, device=config.device)
    except (NotFound, ModelUnavailable) as err:
        raise type(err)(f"cannot load the CLIP that index {config.index_dir} was built with ({err}); "
                        f"give the same model explicitly (EngineConfig.model / --model)") from err


def open_parts(config: EngineConfig, kb: Any = None) -> tuple[Any, Any, Any, Any]:
    """(IndexStore, LoadedClip, KnowledgeBase | None, Rewriter); a CLIP that does not fit the index is refused."""
    from evdsearch.engine.onnx_clip_text import with_text_encoder
    from evdsearch.engine.rewriters import create_rewriter
    from evdsearch.engine.threads import apply_thread_budget
    from evdsearch.indexer.kb import KnowledgeBase
    from evdsearch.indexer.store import IndexStore

    apply_thread_budget(config.threads)  # before any session or index is made
    store = IndexStore.open(config.index_dir, device=config.device, backend=config.backend,
                            backend_uri=config.backend_uri)
    clip = load_index_clip(config, store.manifest)
    try:
        store.check_model(clip.identity)
    except IncompatibleArtifact as err:
        raise IncompatibleArtifact(f"refusing to search index {config.index_dir} with model "
                                   f"{clip.identity.model}: {err}") from err
    clip = with_text_encoder(clip, config.text_encoder, config.device, config.text_onnx)
    if config.rewriter not in ("none", "template"):
        from evdsearch.engine.rewriters.pin import check_pin

        check_pin(config.rewriter, clip.identity.fingerprint)  # a shipped rewriter runs only on its own CLIP
    rewriter = create_rewriter(config.rewriter, device=config.device)  # before the KB: nothing to release
    if not config.kb_dir:
        if config.rewriter != "none":
            _log.warning("no knowledge base given: queries are searched as they are (rewriter %s unused)",
                         config.rewriter)
        return store, clip, None, rewriter
    return store, clip, kb if kb is not None else KnowledgeBase.open(config.kb_dir), rewriter
