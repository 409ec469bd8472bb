"""SearchEngine over a real tiny index + KB: modes, fusion equivalence, explain, image/embedding queries, validation."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from test_engine_support import open_engine, png_bytes

from evdsearch.engine.api import DeadlineExceeded
from evdsearch.engine.fusion import fuse_queries
from evdsearch.engine.search import SearchEngine
from evdsearch.errors import IncompatibleArtifact, InvalidInput
from evdsearch.search_api import SearchRequest

QUERY = "two tomatoes next to a school bus"


def test_fused_search_equals_explicit_score_averaging(engine: SearchEngine) -> None:
    """One search with (1-a)q + a q' ranks and scores exactly like (1-a)s(q) + a s(q') over all items."""
    count = engine.store.count
    rewritten = engine.rewrite(QUERY).rewritten
    q, q2 = engine.clip.encode_texts([QUERY, rewritten])
    all_items = np.asarray(engine.store.embeddings)
    for alpha in (0.0, 0.3, 0.5, 1.0):
        explicit = (1 - alpha) * (all_items @ q) + alpha * (all_items @ q2)
        scores, ids = engine.store.search(fuse_queries(q, q2, alpha)[None], count)
        np.testing.assert_allclose(scores[0], explicit[ids[0]], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scores[0], np.sort(explicit)[::-1], rtol=1e-5, atol=1e-6)
        hits = engine.search(SearchRequest(text=QUERY, k=count, alpha=alpha)).hits
        np.testing.assert_allclose([h.score for h in hits], np.sort(explicit)[::-1], rtol=1e-5, atol=1e-6)
        for hit in hits:
            assert hit.original_score == pytest.approx(float(all_items[hit.id] @ q), abs=1e-5)
            assert hit.rewritten_score == pytest.approx(float(all_items[hit.id] @ q2), abs=1e-5)
            assert hit.score == pytest.approx((1 - alpha) * hit.original_score + alpha * hit.rewritten_score,
                                              abs=1e-5)


def test_modes_rank_by_their_own_score(engine: SearchEngine) -> None:
    for mode, field in (("original", "original_score"), ("rewritten", "rewritten_score")):
        hits = engine.search(SearchRequest(text=QUERY, k=5, mode=mode)).hits
        assert len(hits) == 5
        assert [h.score for h in hits] == pytest.approx([getattr(h, field) for h in hits], abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hits_carry_items_and_explain(engine: SearchEngine) -> None:
    resp = engine.search(SearchRequest(text=QUERY, k=3, explain=True))
    hit = resp.hits[0]
    assert hit.uri.endswith(".png") and hit.captions and hit.captions[0].startswith("a ")
    ex = resp.explanation
    assert [m.entity for m in ex.entities] == ["tomato", "school bus"]
    assert [d.text for d in ex.descriptions["tomato"]] == ["a red round fruit", "green leaves on top", "glossy skin"]
    assert ex.rewritten_query.startswith(QUERY + ", tomato which is a red round fruit")
    assert set(ex.timings_ms) == {"rewrite", "encode", "search", "hydrate"}
    assert all(v >= 0 for v in ex.timings_ms.values())
    assert engine.search(SearchRequest(text=QUERY)).explanation is None


def test_k_larger_than_the_index_returns_every_image(engine: SearchEngine) -> None:
    assert len(engine.search(SearchRequest(text="a cat", k=1000)).hits) == engine.store.count


def test_image_and_embedding_queries_are_not_rewritten(engine: SearchEngine) -> None:
    resp = engine.search(SearchRequest(image_bytes=png_bytes("red"), k=4, explain=True))
    assert all(h.original_score == h.rewritten_score == pytest.approx(h.score, abs=1e-5) for h in resp.hits)
    assert resp.explanation.entities == [] and resp.explanation.rewritten_query == ""
    row = np.asarray(engine.store.embeddings[5]) * 3.0  # not unit length: the engine normalises it
    hits = engine.search(SearchRequest(embedding=row.tolist(), k=1)).hits
    assert hits[0].id == 5 and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_batch_keeps_order_and_matches_single_searches(engine: SearchEngine) -> None:
    reqs = [SearchRequest(text=QUERY, k=3), SearchRequest(image_bytes=png_bytes("blue"), k=2),
            SearchRequest(text="a panda", k=4, mode="original")]
    batch = engine.search_batch(reqs)
    assert [len(r.hits) for r in batch] == [3, 2, 4]
    for req, resp in zip(reqs, batch, strict=True):
        single = engine.search(req)
        assert [h.id for h in resp.hits] == [h.id for h in single.hits]
        assert [h.score for h in resp.hits] == pytest.approx([h.score for h in single.hits], abs=1e-5)
    assert engine.search_batch([]) == []


BAD_REQUESTS = {
    "empty text": (SearchRequest(text=""), "empty"),
    "whitespace text": (SearchRequest(text="  \t "), "empty"),
    "text too long": (SearchRequest(text="a" * 1001), "1001 characters"),
    "k zero": (SearchRequest(text="a", k=0), "k must be"),
    "k too big": (SearchRequest(text="a", k=1001), "k must be"),
    "alpha negative": (SearchRequest(text="a", alpha=-0.1), "alpha must be"),
    "alpha above one": (SearchRequest(text="a", alpha=1.5), "alpha must be"),
    "alpha nan": (SearchRequest(text="a", alpha=float("nan")), "alpha must be"),
    "unknown mode": (SearchRequest(text="a", mode="both"), "unknown mode"),
    "undecodable image": (SearchRequest(image_bytes=b"not an image"), "could not be decoded"),
    "wrong dimension": (SearchRequest(embedding=[0.1] * 7), "dimension 128"),
    "non-finite embedding": (SearchRequest(embedding=[float("nan")] * 128), "NaN"),
    "zero embedding": (SearchRequest(embedding=[0.0] * 128), "zeros"),
    "text and image": (SearchRequest(text="a", image_bytes=png_bytes()), "text and image"),
    "nothing": (SearchRequest(), "got none"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_are_refused_with_a_message(engine: SearchEngine, name: str) -> None:
    req, message = BAD_REQUESTS[name]
    with pytest.raises(InvalidInput, match=message):
        engine.search(req)


def test_huge_image_is_refused_before_decoding(engine: SearchEngine) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buffer, format="PNG")  # a few KiB on the wire, 36 Mpixel decoded
    with pytest.raises(InvalidInput, match="6000x6000 pixels; the limit is 25,000,000"):
        engine.search(SearchRequest(image_bytes=buffer.getvalue()))


def test_bad_request_in_a_batch_is_named(engine: SearchEngine) -> None:
    with pytest.raises(InvalidInput, match="request 1: k must be"):
        engine.search_batch([SearchRequest(text="a"), SearchRequest(text="b", k=0)])
    with pytest.raises(InvalidInput, match="empty"):
        engine.rewrite(" ")


def test_passed_deadline_stops_before_encoding(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object) -> None:
        raise AssertionError("encoded after the deadline")

    monkeypatch.setattr(engine.clip, "encode_texts", fail)
    with pytest.raises(DeadlineExceeded):
        engine.search(SearchRequest(text=QUERY), deadline=time.monotonic() - 1.0)


def test_info(engine: SearchEngine, tiny_clip_dir: Path) -> None:
    info = engine.info()
    assert info.model == str(tiny_clip_dir.resolve()) and info.dim == 128
    assert (info.index_size, info.index_factory, info.kb_entities, info.kb_descriptions) == (12, "Flat", 4, 8)
    assert info.rewriter == "template" and info.default_alpha == 0.5 and info.device == "cpu"


def test_model_mismatch_is_refused(parts: tuple[Path, Path], tmp_path: Path) -> None:
    import open_clip
    import torch

    from evdsearch.clip_models import create_clip, model_config, save_clip_checkpoint

    torch.manual_seed(1)
    other = create_clip("evd-tiny", device="cpu")
    other_dir = save_clip_checkpoint(other.model, model_config("evd-tiny"),
                                     open_clip.get_model_preprocess_cfg(other.model), tmp_path / "other_clip")
    with pytest.raises(IncompatibleArtifact, match="refusing to search index .* built with model"):
        open_engine(parts[0], parts[1], model=str(other_dir))
