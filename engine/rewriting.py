"""QueryRewriter: entities -> knowledge-base descriptions -> rewriter, with an LRU cache; shared with benchmarks."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evdsearch.engine.entities import EntityMatcher, distinct_entities
from evdsearch.engine.rewriters.base import Rewriter
from evdsearch.search_api import RewriteResult

if TYPE_CHECKING:
    from evdsearch.indexer.kb import KnowledgeBase


class LRUCache:
    """A small thread-safe LRU map.

    Not functools.lru_cache: the size comes from EngineConfig per instance, a decorated method
    would keep `self` alive in a class-level cache, and `rewrite_many` fills entries computed in
    one batched model call, which a memoised function cannot accept.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key: str, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def peek(self, key: str) -> Any:
        """The cached value or None, without counting a hit or refreshing its place."""
        with self._lock:
            return self._data.get(key)

    def __len__(self) -> int:
        return len(self._data)


def choose_descriptions(descriptions: Sequence[Any], k: int, prefer_sources: Sequence[str] = ()) -> list[Any]:
    """The k descriptions handed to the rewriter: preferred sources first (in the order given), then
    the rest; best first within each group by the KB's `rank_key` (measured evidence, else score)."""
    from evdsearch.indexer.kb import rank_key

    rank = {source: i for i, source in enumerate(prefer_sources)}
    keyed = sorted(enumerate(descriptions),
                   key=lambda item: (rank.get(item[1].source, len(rank)), *rank_key(item[1]), item[0]))
    return [d for _, d in keyed][:k]


@dataclass
class Lookup:
    """A query's result so far; `pending`: its rewrite still needs the rewriter (`QueryRewriter.finish`)."""

    result: RewriteResult  # entities and descriptions; `rewritten` == query until finished
    pending: bool  # True: not rewritten yet


class QueryRewriter:
    """Rewrites text queries the same way for the server and the benchmarks.

    Results are cached and shared: treat a returned RewriteResult as read-only.
    With `template_ensemble`, a trained rewriter's result also carries the template's rewrite as a variant:
    the engine averages their embeddings, so one rewrite's wrong colour or shape is outvoted (issue 12).
    """

    def __init__(self, kb: KnowledgeBase | None, rewriter: Rewriter, max_descriptions: int = 3,
                 cache_size: int = 1024, normalize: Callable[[str], str] | None = None,
                 prefer_sources: Sequence[str] = (), template_ensemble: bool = False) -> None:
        self.kb = kb
        self.rewriter = rewriter
        # the template is the ensemble's second member; for none / template there is nothing to add
        self.template_ensemble = template_ensemble and rewriter.name not in ("none", "template")
        self.max_descriptions = max_descriptions
        self.prefer_sources = tuple(prefer_sources)  # e.g. ("ex2", "ift"): these sources' descriptions first
        self.matcher = EntityMatcher(kb.entities(), normalize) if kb is not None else None
        self.cache = LRUCache(cache_size)  # query text -> RewriteResult
        self.outputs = LRUCache(cache_size)  # rewriter prompt (query + its descriptions) -> the model's rewrite

    def rewrite(self, text: str) -> RewriteResult:
        """Entities found, their top descriptions, and the rewritten query (== query when none)."""
        return self.rewrite_many([text])[0]

    def rewrite_many(self, texts: Sequence[str]) -> list[RewriteResult]:
        """`rewrite` for many texts; the rewriter sees all uncached ones with evidence in one batch."""
        looked = self.lookup(texts)
        self.finish(looked)
        return [item.result for item in looked]

    def lookup(self, texts: Sequence[str]) -> list[Lookup]:
        """Cached results, else entities and descriptions only (no model call): `pending` ones still need
        `finish` to be rewritten. Equal texts share one result."""
        seen: dict[str, Lookup] = {}
        out = []
        for text in texts:
            query = text.strip()
            if query not in seen:
                cached = self.cache.get(query)
                if cached is not None:
                    seen[query] = Lookup(cached, pending=False)
                else:
                    result = self.evidence(query)
                    if not result.descriptions:  # nothing to rewrite: final as it is
                        self.cache.put(query, result)
                    seen[query] = Lookup(result, pending=bool(result.descriptions))
            out.append(seen[query])
        return out

    def finish(self, looked: Sequence[Lookup]) -> None:
        """Rewrite the pending results in place, in one rewriter batch, and cache them."""
        pending = list({id(item.result): item for item in looked if item.pending}.values())
        if not pending:
            return
        rewritten = self.rewrite_items([(item.result.query, item.result.descriptions) for item in pending])
        for item, (text, variants) in zip(pending, rewritten, strict=True):
            item.result.rewritten, item.result.variants = text, variants
            item.pending = False
            self.cache.put(item.result.query, item.result)

    def rewrite_items(self, items: Sequence[tuple[str, Any]]) -> list[tuple[str, list[str]]]:
        """(rewrite, variants) per (query, evidence) pair: one rewriter batch for the prompts not seen before
        (model outputs are cached by prompt: the query and its descriptions are all a rewrite depends on),
        plus the template's rewrite as the variant when ensembling (calibration encodes what the engine will)."""
        from evdsearch.engine.rewriters.prompt import format_rewriter_input
        from evdsearch.engine.rewriters.template import template_rewrite

        if self.rewriter.name in ("none", "template"):  # string formatting: nothing worth caching
            rewritten = self.rewriter.rewrite_batch(list(items))
        else:
            prompts = [format_rewriter_input(query, evidence) for query, evidence in items]
            known = {p: self.outputs.get(p) for p in dict.fromkeys(prompts)}
            todo = {p: item for p, item in zip(prompts, items, strict=True) if known[p] is None}
            for prompt, text in zip(todo, self.rewriter.rewrite_batch(list(todo.values())), strict=True):
                known[prompt] = text
                self.outputs.put(prompt, text)
            rewritten = [known[p] for p in prompts]
        if not self.template_ensemble:
            return [(text, []) for text in rewritten]
        return [(text, [template_rewrite(query, evidence)]) for text, (query, evidence)
                in zip(rewritten, items, strict=True)]

    def evidence(self, query: str) -> RewriteResult:
        """The query's entities and the descriptions the rewriter would get for them, without calling the
        rewriter (`rewritten` is the query itself); calibration scores exactly this evidence."""
        mentions = self.matcher.find(query) if self.matcher is not None else []
        entities = distinct_entities(mentions)
        descriptions = {}
        for entity in entities:
            found = (choose_descriptions(self.kb.get(entity), self.max_descriptions, self.prefer_sources)
                     if self.kb is not None else [])
            if found:
                descriptions[entity] = found
        return RewriteResult(query=query, rewritten=query, entities=entities, descriptions=descriptions,
                             mentions=mentions)
