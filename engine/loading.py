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


def open_parts(config: EngineConfig, kb: Any = None, clip: Any = None) -> tuple[Any, Any, Any, Any]:
    """(IndexStore, LoadedClip, KnowledgeBase | None, Rewriter); a CLIP that does not fit the index is refused.

    `kb`, `clip`: already open parts to reuse (hot reload); `clip` only when the index was built with it
    (same fingerprint), so a reload of an updated index neither loads the model again nor holds it twice.
    """
    from evdsearch.engine.onnx_clip_text import with_text_encoder
    from evdsearch.engine.rewriters import create_rewriter
    from evdsearch.engine.threads import apply_thread_budget
    from evdsearch.indexer.store import IndexStore

    apply_thread_budget(config.threads)  # before any session or index is made
    store = IndexStore.open(config.index_dir, device=config.device, backend=config.backend,
                            backend_uri=config.backend_uri, verify=config.verify_checksums)
    if clip is None or clip.identity.fingerprint != store.manifest.fingerprint:
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
    return store, clip, kb if kb is not None else open_kb(config), rewriter


def open_kb(config: EngineConfig) -> Any:
    """The KB's current version, its files checked against its SHA256SUMS first (unless turned off): a damaged
    LMDB file is refused before LMDB maps it."""
    from evdsearch.indexer.kb import KnowledgeBase
    from evdsearch.integrity import check_sums
    from evdsearch.versioned import current_version

    version = current_version(config.kb_dir)  # resolved once: the folder checked is the folder opened
    if config.verify_checksums and version.is_dir() and check_sums(version, "knowledge base") is None:
        _log.warning("knowledge base %s has no SHA256SUMS (written before checksums): its files are not checked; "
                     "the next `kb import` or `kb calibrate` adds them", config.kb_dir)
    return KnowledgeBase.open(version)
