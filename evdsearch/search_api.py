"""The search API's types: requests, answers and limits, shared by the engine, its gRPC server and every client.

Plain dataclasses and constants, no transport and nothing heavy: a client (the demo, `evdsearch search`) and
the engine import the same definitions, and `evdsearch.proto.convert` maps them to and from protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODES = ("fused", "original", "rewritten")  # how hits are scored; see SearchRequest.mode
TIMING_STAGES = ("rewrite", "encode", "search", "hydrate")  # keys of Explanation.timings_ms
MAX_QUERY_CHARS = 1000  # longer text queries are refused
MAX_K = 1000  # largest k a request may ask for
DEFAULT_K = 10  # hits when a request leaves k unset
MAX_BATCH = 256  # most requests in one search_batch call
MAX_IMAGE_PIXELS = 25_000_000  # larger query images are refused before decoding (a 16 MiB PNG can hold gigapixels)
MAX_BATCH_PIXELS = 50_000_000  # all images of one batch together; more answers RESOURCE_EXHAUSTED
DEFAULT_ALPHA = 0.5  # weight of the rewritten query when neither the request, a fixed nor a calibrated one decides


@dataclass(frozen=True)
class Description:
    """One visual description of an entity (as the knowledge base stores it and explanations show it)."""

    text: str  # the description itself
    source: str  # where it came from
    score: float  # relevance as imported; the KB ranks by it when no evidence was measured
    kind: str = ""  # optional label (visual / non_visual / wrong in the shapes world); never read to rank
    evidence: float | None = None  # how well CLIP ties it to the entity's images (`kb calibrate`); ranks first


@dataclass
class SearchRequest:
    """One query: exactly one of text, image_bytes, embedding."""

    text: str | None = None  # a text query, at most MAX_QUERY_CHARS characters
    image_bytes: bytes | None = None  # an encoded image (PNG, JPEG, ...)
    embedding: Any = None  # a vector of the index dimension (list or numpy); L2-normalised before search
    k: int = DEFAULT_K  # hits to return, 1..MAX_K
    mode: str = "fused"  # fused: (1-alpha)*s(q) + alpha*s(q'); original: s(q); rewritten: s(q')
    alpha: float | None = None  # weight of the rewritten query in [0, 1]; None: the engine decides (engine.alpha)
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
