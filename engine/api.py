"""The engine's own API: what `SearchEngine.open` loads (EngineConfig) and how a search stops early.

The request and answer types a client also needs (SearchRequest, SearchResponse, Hit, ...) are defined once,
transport-free, in `evdsearch.search_api`.
"""

from __future__ import annotations

from dataclasses import dataclass

from evdsearch.search_api import DEFAULT_ALPHA

DECODE_SIDE = 448  # images are decoded (JPEG draft) and reduced to no less than this on the short side


class DeadlineExceeded(Exception):
    """The caller's deadline passed between stages; the engine stopped instead of working on."""


@dataclass
class EngineConfig:
    """What `SearchEngine.open` loads."""

    index_dir: str  # folder written by `evdsearch index` (manifest.json, index.faiss, ...)
    kb_dir: str | None = None  # LMDB knowledge base of entity visual descriptions; None: no rewriting
    rewriter: str = "template"  # "none", "template", or a seq2seq model folder
    device: str = "auto"  # auto | cpu | cuda, for CLIP and the rewriter
    rewrite_cache_size: int = 1024  # rewrites kept in the LRU cache (0 disables it)
    max_descriptions: int = 3  # descriptions per entity handed to the rewriter, best first
    prefer_sources: tuple[str, ...] = ()  # KB sources ranked before the others (e.g. ("ift", "ex2")), then score
    alpha: float = DEFAULT_ALPHA  # weight of the rewritten query when nothing else decides (see engine.alpha)
    adaptive_alpha: bool = True  # use the KB's calibrated per-entity weights; False: `alpha` is fixed for all
    template_ensemble: bool = True  # a trained rewriter's q' is the mean embedding of its rewrite and the template's
    model: str | None = None  # CLIP to load instead of the one named in the index manifest
    pretrained: str | None = None  # pretrained tag / weights file for `model`
    text_encoder: str = "auto"  # auto: the CLIP folder's ONNX text export when present and current; torch | onnx | onnx-int8
    text_onnx: str | None = None  # folder of that export when it is not CKPT/onnx (e.g. CLIP from a weights file)
    backend: str | None = None  # faiss | milvus: refuse an index of another backend; None: what its manifest says
    backend_uri: str | None = None  # Milvus-backed index: address overriding the one in its manifest
    embedding_cache_size: int = 4096  # query-text embeddings kept in an LRU cache (0 disables it)
    threads: int = 0  # one thread budget for torch, onnxruntime and FAISS (0: leave each library's default)
    verify_checksums: bool = True  # re-hash index and KB files against their SHA256SUMS at load: damage is refused
