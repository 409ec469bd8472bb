"""SearchEngine: validate -> rewrite -> encode -> one index search -> hydrate, for text, image and embedding queries."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from evdsearch.engine.alpha import AlphaPolicy
from evdsearch.engine.api import DeadlineExceeded, EngineConfig
from evdsearch.engine.embedding_cache import CachedTextEncoder
from evdsearch.engine.encoding import encode_queries
from evdsearch.engine.explain import explain
from evdsearch.engine.fusion import fuse_queries
from evdsearch.engine.hydrate import hydrate_hits
from evdsearch.engine.ranking import page_of, search_pages
from evdsearch.engine.rewriting import QueryRewriter
from evdsearch.engine.terms import combine, expand
from evdsearch.engine.validation import Query, check_alpha, check_batch, check_text
from evdsearch.errors import InvalidInput, NotFound
from evdsearch.search_api import EngineInfo, RewriteResult, SearchRequest, SearchResponse

if TYPE_CHECKING:
    from evdsearch.clip_models import LoadedClip
    from evdsearch.indexer.kb import KnowledgeBase
    from evdsearch.indexer.selection import Selection
    from evdsearch.indexer.store import IndexStore


def check_deadline(deadline: float | None) -> None:
    """Stop between stages once the caller's deadline (a time.monotonic() value) has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded("deadline exceeded before the search finished")


def needs_rewrite(query: Query) -> bool:
    """q' is only used by the fused and rewritten modes, and shown by explanations."""
    return query.mode != "original" or query.explain


def q_prime_counts(query: Query, alpha: float) -> bool:
    """Whether q' can change this query's answer: shown, searched alone, or fused with a weight above 0."""
    return query.explain or query.mode == "rewritten" or (query.mode == "fused" and alpha > 0)


class _Stopwatch:
    """Milliseconds per named stage."""

    def __init__(self) -> None:
        self.timings_ms: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings_ms[stage] = (now - self._start) * 1000.0
        self._start = now


class SearchEngine:
    """One engine per index: thread-safe for concurrent searches (the gRPC server is a thread pool)."""

    def __init__(self, store: IndexStore, clip: LoadedClip, rewriter: QueryRewriter, config: EngineConfig,
                 kb: KnowledgeBase | None = None, text_cache: CachedTextEncoder | None = None) -> None:
        self.store = store
        self.clip = clip
        self.rewriter = rewriter
        self.config = config
        self.kb = kb
        self.dim = int(store.dim)
        self.alpha_policy = AlphaPolicy.from_kb(kb, check_alpha(config.alpha), config.adaptive_alpha)
        # what queries are encoded with; a reload that keeps the model keeps the cache warm (keys carry the
        # model's fingerprint, so nothing of another model is ever served)
        reusable = text_cache is not None and text_cache.wraps(clip) \
            and text_cache.capacity == max(0, config.embedding_cache_size)
        self.encoder = text_cache if reusable else CachedTextEncoder(clip, config.embedding_cache_size,
                                                                     serialize=config.threads > 0)

    @classmethod
    def open(cls, config: EngineConfig, kb: KnowledgeBase | None = None, clip: LoadedClip | None = None,
             text_cache: CachedTextEncoder | None = None) -> SearchEngine:
        """Load the index, the CLIP it was built with (or config.model), the KB and the rewriter.

        `kb`: an already open handle of config.kb_dir to use instead of opening it (hot reload); `clip`: a
        loaded CLIP to keep when the index was built with it (hot reload); `text_cache`: the previous engine's
        query-embedding cache, kept when that CLIP was kept (hot reload).
        """
        from evdsearch.engine.loading import open_parts

        store, clip, kb, rewriter = open_parts(config, kb=kb, clip=clip)
        query_rewriter = QueryRewriter(kb, rewriter, max_descriptions=config.max_descriptions,
                                       cache_size=config.rewrite_cache_size,
                                       prefer_sources=config.prefer_sources,
                                       template_ensemble=config.template_ensemble)
        return cls(store, clip, query_rewriter, config, kb=kb, text_cache=text_cache)

    def close(self) -> None:
        """Release the knowledge base (LMDB allows one open handle per folder and process)."""
        if self.kb is not None:
            self.kb.close()

    def __enter__(self) -> SearchEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, req: SearchRequest, deadline: float | None = None) -> SearchResponse:
        """Top-k hits for one request; raises InvalidInput for a malformed one."""
        return self.search_batch([req], deadline=deadline)[0]

    def search_batch(self, reqs: Sequence[SearchRequest], deadline: float | None = None) -> list[SearchResponse]:
        """Many requests with one rewriter batch, one encode per modality and one index search per filter.

        Stage timings in explanations are those of the whole batch.
        """
        queries = check_batch(reqs, self.dim)
        if not queries:
            return []
        watch = _Stopwatch()
        check_deadline(deadline)
        selections = self._selections(queries)
        queries = [self._with_like_vector(query) for query in queries]
        units, parts = expand(queries)
        rewrites, alphas = self._rewrite_stage(units)
        watch.lap("rewrite")
        check_deadline(deadline)
        q_units, q_rewritten_units = encode_queries(self.encoder, units, rewrites)
        q, q_rewritten = combine(parts, q_units), combine(parts, q_rewritten_units)
        vectors = combine(parts, self._search_vectors(units, alphas, q_units, q_rewritten_units))
        watch.lap("encode")
        check_deadline(deadline)
        pages = search_pages(self.store, vectors, queries, selections)
        watch.lap("search")
        check_deadline(deadline)
        hits = []
        for i, query in enumerate(queries):
            scores, ids = page_of(*pages[i][:2], query.options, query.k, self.store, query.like_id)
            hits.append(hydrate_hits(self.store, scores, ids, query.k, q[i], q_rewritten[i],
                                     query.options.with_metadata))
        watch.lap("hydrate")
        return [SearchResponse(hits=hits[i], explanation=explain(
            [(units[u], rewrites[u], alphas[u], w) for u, w in parts[i]], query, watch.timings_ms,
            selections[i], pages[i][2]) if query.explain else None) for i, query in enumerate(queries)]

    def _selections(self, queries: list[Query]) -> list[Selection | None]:
        """Each query's filter bound to this index's schema (an error names the request in a batch)."""
        out = []
        for position, query in enumerate(queries):
            try:
                out.append(None if query.options.filter is None else self.store.select(query.options.filter))
            except InvalidInput as err:
                raise InvalidInput(f"request {position}: {err}" if len(queries) > 1 else str(err)) from None
        return out

    def _with_like_vector(self, query: Query) -> Query:
        """A "more like this" query with its image's stored embedding as the query vector."""
        if query.like_id is None:
            return query
        row = query.like_id
        if row >= self.store.count or not self.store.selector.live[row]:
            raise NotFound(f"no image {row} in this index (ids are 0..{self.store.count - 1}, deleted ones excluded)")
        return replace(query, vector=np.asarray(self.store.embeddings[row], dtype=np.float32))

    def cached_text_query(self, req: SearchRequest) -> bool:
        """True when a text request's rewrite and vectors are all cached: it costs microseconds, so the
        batcher answers it at once instead of making it wait behind a batch of encodes."""
        if not isinstance(req.text, str) or req.image_bytes is not None or req.embedding is not None:
            return False
        text = req.text.strip()
        if not self.encoder.contains(text):
            return False
        if req.mode == "original" and not req.explain:
            return True
        rewrite = self.rewriter.cache.peek(text)
        return rewrite is not None and all(self.encoder.contains(t) for t in (rewrite.rewritten, *rewrite.variants))

    def _rewrite_stage(self, queries: list[Query]) -> tuple[list[RewriteResult | None], list[float]]:
        """Rewrites for the text queries whose mode or explanation needs q' (the others keep q' = q), and each
        query's weight α (engine/alpha.py's order; decided from its entities before any model runs).

        An original-mode query without `explain` is neither rewritten nor encoded twice, and neither is a fused
        query whose α is 0 (its q' is weighted 0, so the answer cannot change): its hits' rewritten_score then
        equals original_score.
        """
        wanted = [i for i, query in enumerate(queries) if query.text is not None and needs_rewrite(query)]
        looked = dict(zip(wanted, self.rewriter.lookup([queries[i].text for i in wanted]), strict=True))
        rewrites = [looked[i].result if i in looked else None if query.text is None
                    else RewriteResult(query=query.text, rewritten=query.text) for i, query in enumerate(queries)]
        alphas = [self.alpha_policy.resolve(query.alpha, list(rewrite.descriptions) if rewrite else ())
                  for query, rewrite in zip(queries, rewrites, strict=True)]
        self.rewriter.finish([item for i, item in looked.items() if q_prime_counts(queries[i], alphas[i])])
        return rewrites, alphas

    @staticmethod
    def _search_vectors(queries: list[Query], alphas: list[float], q: np.ndarray, q_rewritten: np.ndarray) -> np.ndarray:
        """Per row: q, q' or the fused (1-alpha)*q + alpha*q' (not re-normalised)."""
        fused = fuse_queries(q, q_rewritten, np.array(alphas, dtype=np.float32))
        pick = {"original": q, "rewritten": q_rewritten, "fused": fused}
        return np.stack([pick[query.mode][i] for i, query in enumerate(queries)]).astype(np.float32)

    def rewrite(self, text: str) -> RewriteResult:
        """What a text query becomes; raises InvalidInput for an empty or too long one."""
        return self.rewriter.rewrite(check_text(text))

    @property
    def rewriter_name(self) -> str:
        """none, template, or the seq2seq model folder (with "+ template" when ensembled with the template)."""
        name = self.rewriter.rewriter.name
        return f"{name} + template" if self.rewriter.template_ensemble else name

    def info(self) -> EngineInfo:
        """The loaded model, index, knowledge base and rewriter."""
        from evdsearch import __version__

        manifest = self.store.manifest
        identity = self.clip.identity
        stats = self.kb.stats() if self.kb is not None else None
        cache = self.encoder.stats()
        return EngineInfo(
            model=identity.model, pretrained=identity.pretrained, fingerprint=identity.fingerprint,
            dim=self.dim, index_size=int(manifest.count), index_factory=str(manifest.factory),
            kb_entities=stats.entities if stats else 0, kb_descriptions=stats.descriptions if stats else 0,
            rewriter=self.rewriter_name, default_alpha=self.config.alpha, device=self.clip.device,
            version=__version__, text_cache_hits=cache.hits, text_cache_misses=cache.misses,
            text_cache_size=cache.size, text_cache_capacity=cache.capacity,
            metadata_fields=self.store.metadata.schema.describe(),
        )

