"""The engine API: configs, requests and answers shared by the gRPC server, the demo and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evdsearch.errors import UserError

if TYPE_CHECKING:  # indexer.kb imports lmdb; keep `import engine.api` light
    from evdsearch.indexer.kb import Description

MODES = ("fused", "original", "rewritten")  # how hits are scored; see SearchRequest.mode
TIMING_STAGES = ("rewrite", "encode", "search", "hydrate")  # keys of Explanation.timings_ms
MAX_QUERY_CHARS = 1000  # longer text queries are refused
MAX_K = 1000  # largest k a request may ask for
MAX_BATCH = 256  # most requests in one search_batch call
MAX_IMAGE_PIXELS = 25_000_000  # larger query images are refused before decoding (a 16 MiB PNG can hold gigapixels)
MAX_BATCH_PIXELS = 50_000_000  # all images of one batch together; more answers RESOURCE_EXHAUSTED
DEFAULT_MAX_REQUEST_S = 120.0  # server: longest one RPC may run, deadline or none; longer: DEADLINE_EXCEEDED
DEFAULT_MAX_CONCURRENT = 128  # server: in-flight RPCs (running + queued for a worker); more: RESOURCE_EXHAUSTED
DECODE_SIDE = 448  # images are decoded (JPEG draft) and reduced to no less than this on the short side


class DeadlineExceeded(Exception):
    """The caller's deadline passed between stages; the engine stopped instead of working on."""


class ResourceExhausted(UserError):
    """A request within the per-item limits that asks for more work than the server allows at once
    (e.g. a batch over its pixel budget); gRPC RESOURCE_EXHAUSTED."""


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
    alpha: float = 0.5  # weight of the rewritten query when a request leaves alpha unset (and no KB weight applies)
    adaptive_alpha: bool = True  # use the KB's calibrated per-entity weights (`kb calibrate`) when it has them
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


@dataclass
class SearchRequest:
    """One query: exactly one of text, image_bytes, embedding."""

    text: str | None = None  # a text query, at most MAX_QUERY_CHARS characters
    image_bytes: bytes | None = None  # an encoded image (PNG, JPEG, ...)
    embedding: Any = None  # a vector of the index dimension (list or numpy); L2-normalised before search
    k: int = 10  # hits to return, 1..MAX_K
    mode: str = "fused"  # fused: (1-alpha)*s(q) + alpha*s(q'); original: s(q); rewritten: s(q')
    alpha: float | None = None  # weight of the rewritten query in [0, 1]; None: EngineConfig.alpha
    explain: bool = False  # fill SearchResponse.explanation


@dataclass
class Hit:
    """One image in the answer."""

    id: int  # row in the index
    uri: str  # where the image lives
    score: float  # the score the index ranked it by (fused in fused mode)
    original_score: float  # exact s(q)
    rewritten_score: float  # exact s(q'); equals original_score when nothing was rewritten or q' was not needed
    captions: list[str] = field(default_factory=list)  # captions stored with the image


@dataclass
class EntityMention:
    """A knowledge-base entity found in a query."""

    entity: str  # the entity name as the knowledge base lists it
    text: str  # the words of the query that matched
    start: int  # character span of `text` in the query
    end: int


@dataclass
class RewriteResult:
    """What a text query became, and why."""

    query: str  # the query as given (stripped)
    rewritten: str  # the rewritten query; equals `query` when nothing was found
    entities: list[str] = field(default_factory=list)  # distinct entities, in order of first mention
    descriptions: dict[str, list[Description]] = field(default_factory=dict)  # those handed to the rewriter
    mentions: list[EntityMention] = field(default_factory=list)  # every match, with its span
    variants: list[str] = field(default_factory=list)  # more rewrites whose embeddings are averaged into q'


@dataclass
class Explanation:
    """Why the hits are what they are."""

    entities: list[EntityMention]  # entities found in the query (empty for image / embedding queries)
    descriptions: dict[str, list[Description]]  # descriptions the rewriter used, per entity
    rewritten_query: str  # what the query became ("" for image / embedding queries)
    timings_ms: dict[str, float]  # per stage: rewrite, encode, search, hydrate
    alpha: float | None = None  # weight of the rewritten query this query was fused with (None: not a text query)
    rewrite_variants: list[str] = field(default_factory=list)  # rewrites averaged with rewritten_query (ensemble)


@dataclass
class SearchResponse:
    """Hits best first, plus an explanation when asked for."""

    hits: list[Hit]
    explanation: Explanation | None = None


@dataclass
class EngineInfo:
    """What the engine has loaded."""

    model: str  # CLIP architecture name or checkpoint folder
    pretrained: str  # pretrained tag or weights file, may be empty
    fingerprint: str  # checksum of the CLIP weights
    dim: int  # embedding dimension
    index_size: int  # images in the index
    index_factory: str  # FAISS factory string
    kb_entities: int  # entities in the knowledge base (0 without one)
    kb_descriptions: int  # descriptions in the knowledge base
    rewriter: str  # none, template, or a model folder
    default_alpha: float  # alpha used when a request leaves it unset (and no calibrated weight applies)
    device: str  # torch device of the encoders
    version: str  # evdsearch version
    generation: int = 1  # engine generation: 1 at start, +1 per successful hot reload
    loaded_at: str = ""  # when that generation was loaded (ISO 8601 UTC); set by the server
    text_cache_hits: int = 0  # query texts answered from the embedding cache
    text_cache_misses: int = 0  # query texts that ran the text encoder
    text_cache_size: int = 0  # embeddings the cache holds now
    text_cache_capacity: int = 0  # most embeddings it holds (0: off)
