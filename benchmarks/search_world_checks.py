"""The checks of `bench search-features --world`: each takes engines over the world's index and returns numbers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.search_api import MAX_DEPTH, SearchRequest, WeightedText

FILTERS = ("objects == 1", 'color1 == "red"', 'objects >= 2 and color1 in ["blue", "green"]',
           'not has_red == true and shape1 != "circle"', 'shape1 == "star" or (objects == 3 and color1 < "c")')
HOSTILE = ("(" * 100 + "objects == 1" + ")" * 100, "objects == 1 or " * 70_000 + "objects == 2",
           "colour == 'red'", 'objects == "one"')


def check_filters(engines: dict[str, Any], queries: list[str], k: int) -> dict[str, Any]:
    """Every hit matches, and each answer holds exactly min(k, matches) hits, on every index type."""
    from evdsearch.filter_expr import parse_filter
    from evdsearch.indexer.filter_eval import bind, evaluate

    out: dict[str, Any] = {"answers": 0, "wrong_hits": 0, "wrong_counts": 0, "selectivity": {}}
    for factory, engine in engines.items():
        store = engine.store
        for text in FILTERS:
            rows = evaluate(bind(parse_filter(text), store.metadata.schema), store.metadata) & store.selector.live
            matches = int(rows.sum())
            out["selectivity"][text] = matches / store.live_count
            for query in queries:
                hits = engine.search(SearchRequest(text=query, k=k, filter=text)).hits
                out["answers"] += 1
                out["wrong_hits"] += sum(not rows[h.id] for h in hits)
                out["wrong_counts"] += len(hits) != min(k, matches)
        out.setdefault("index_types", []).append(factory)
    return out


def check_pages(engines: dict[str, Any], queries: list[str], page: int = 10, depth: int = 100) -> dict[str, Any]:
    """Pages 0, 10, 20 ... concatenated against one top-`depth` call, fused and original, per index type."""
    out: dict[str, Any] = {}
    for factory, engine in engines.items():
        for mode in ("fused", "original"):
            bad = duplicates = 0
            for query in queries:
                top = [h.id for h in engine.search(SearchRequest(text=query, k=depth, mode=mode)).hits]
                pages = [h.id for offset in range(0, depth, page) for h in engine.search(
                    SearchRequest(text=query, k=page, offset=offset, mode=mode)).hits]
                bad += pages != top
                duplicates += len(pages) - len(set(pages))
            out[f"{factory} {mode}"] = {"queries": len(queries), "mismatches": bad, "duplicates": duplicates}
    return out


def _has(objects: list[dict[str, Any]], color: str, shape: str) -> bool:
    return any(o["color"] == color and o["shape"] == shape for o in objects)


def check_threshold(engine: Any, prepared: dict[str, Any], k: int) -> dict[str, Any]:
    """One min_score T between absent and present colour-shape pairs ("a {colour} {shape}", the engine's default
    mode). T = the best score any absent pair's query reaches + 1e-4: the lowest min_score at which every absent
    pair answers nothing, so the kindest one to present pairs. (min_relative cannot empty an answer: the best hit
    always scores R x itself.) Then, for each present pair with at most k images (so they fit in its top k): the
    rank and score of its last image in the full ranking; whether all its images are in its top k with no
    threshold (what retrieval allows) and with min_score T (the Done-when figure). Also counts hits below T."""
    store = engine.store
    objects = [prepared["objects"][Path(store.item(r)["uri"]).name] for r in range(store.count)]
    absent = {f"a {c} {s}": engine.search(SearchRequest(text=f"a {c} {s}", k=1)).hits[0].score
              for c, s in prepared["held_out"]}
    threshold = max(absent.values()) + 1e-4
    answers = {q: engine.search(SearchRequest(text=q, k=k, min_score=threshold)).hits for q in absent}
    pairs = []
    for color, shape in sorted({(o["color"], o["shape"]) for obj in objects for o in obj}):
        rows = {r for r in range(store.count) if _has(objects[r], color, shape)}
        if len(rows) > k:
            continue
        query = f"a {color} {shape}"
        ranking = engine.search(SearchRequest(text=query, k=min(store.live_count, MAX_DEPTH))).hits
        last = max((i for i, h in enumerate(ranking) if h.id in rows), default=len(ranking) - 1)
        hits = engine.search(SearchRequest(text=query, k=k, min_score=threshold)).hits
        answers[query] = hits
        pairs.append({"pair": f"{color} {shape}", "images": len(rows), "last_rank": last + 1,
                      "last_score": ranking[last].score, "in_top_k": len(rows & {h.id for h in ranking[:k]}),
                      "found_at_threshold": len(rows & {h.id for h in hits}), "returned_at_threshold": len(hits)})
    return {"threshold": threshold, "k": k, "absent_best": absent,
            "absent_answer_empty": all(not answers[q] for q in absent),
            "hits_below_threshold": sum(h.score < threshold for hits in answers.values() for h in hits),
            "threshold_hits": sum(len(hits) for hits in answers.values()),
            "present_pairs": len(pairs),
            "present_pairs_in_top_k": sum(p["in_top_k"] == p["images"] for p in pairs),
            "present_pairs_all_found": sum(p["found_at_threshold"] == p["images"] for p in pairs),
            "present_images": sum(p["images"] for p in pairs),
            "present_images_in_top_k": sum(p["in_top_k"] for p in pairs),
            "present_images_found": sum(p["found_at_threshold"] for p in pairs),
            "median_last_rank": float(np.median([p["last_rank"] for p in pairs])) if pairs else 0.0,
            "pairs": pairs}


def check_terms(engine: Any, objects: dict[str, list[dict[str, Any]]], k: int = 20) -> dict[str, Any]:
    """Red images in the top k of "circle", {"circle": 1, "red": -0.5} and {... -1}; weight 0 == plain."""
    store = engine.store

    def red(hits: list[Any]) -> int:
        return sum(any(o["color"] == "red" for o in objects[Path(store.item(h.id)["uri"]).name]) for h in hits)

    plain = engine.search(SearchRequest(text="circle", k=k)).hits
    out = {"circle": red(plain)}
    for weight in (-0.5, -1.0):
        hits = engine.search(SearchRequest(terms=[WeightedText("circle", 1.0), WeightedText("red", weight)], k=k)).hits
        out[f"circle, red {weight:+g}"] = red(hits)
    zero = engine.search(SearchRequest(terms=[WeightedText("circle", 1.0), WeightedText("red", 0.0)], k=k)).hits
    out["weight 0 equals plain"] = [(h.id, h.score) for h in zero] == [(h.id, h.score) for h in plain]
    return out


def check_hostile(engine: Any) -> dict[str, Any]:
    """Hostile filters over a real loopback gRPC server: INVALID_ARGUMENT, and the server still SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from evdsearch.engine.grpc_server.server import build_server
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    running = build_server(engine, port=0, max_workers=2)
    running.start()
    codes = []
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            for text in HOSTILE:
                try:
                    stub.Search(pb.SearchRequest(text="a red circle", filter=text), timeout=60)
                    codes.append("OK")
                except grpc.RpcError as err:
                    codes.append(err.code().name)
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    finally:
        running.stop(0)
    return {"codes": codes, "serving": status == health_pb2.HealthCheckResponse.SERVING}


def _jitter(source: Path, out: Path, seed: int) -> None:
    """A near-copy: Gaussian pixel noise (sigma 2 grey levels) and brightness x U(0.99, 1.01), as a re-save or a
    light filter leaves it. (The shapes world's CLIP names colours from exact RGB: a 3 % brightness change or a
    one-pixel shift of a 64 px image moves some embeddings below 0.9, further than many distinct images.)"""
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng(seed)
    with Image.open(source) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
        noisy = Image.fromarray(np.clip(pixels + rng.normal(0.0, 2.0, pixels.shape), 0, 255).astype(np.uint8))
        ImageEnhance.Brightness(noisy).enhance(float(rng.uniform(0.99, 1.01))).save(out)


def check_dedup_and_mmr(cfg: Any, prepared: dict[str, Any], open_engine: Any,
                        thresholds: tuple[float, ...] = (0.98, 0.99, 0.993, 0.995, 0.997, 0.999)) -> dict[str, Any]:
    """Two jittered copies of `cfg.copies` images added to a copy of the Flat index: dedup's pair precision and
    recall per threshold; MMR's repeated copy groups in the top k at diversity 0 and 0.5."""
    import random

    from evdsearch.indexer.dedup import near_duplicates
    from evdsearch.indexer.store import IndexStore
    from evdsearch.indexer.update import add_images

    work = cfg.workdir / "dedup"
    index = work / "index"
    copies = work / "copies"
    store_rows = IndexStore.open(prepared["indexes"]["Flat"])
    originals = random.Random(cfg.seed).sample(range(store_rows.count), min(cfg.copies, store_rows.count))
    uris = {r: store_rows.item(r)["uri"] for r in originals}
    if not index.exists():
        shutil.copytree(prepared["indexes"]["Flat"], index, symlinks=True)
        copies.mkdir(parents=True, exist_ok=True)
        for row in originals:
            for tag in ("a", "b"):
                _jitter(Path(uris[row]), copies / f"{row:06d}_{tag}.png", seed=row * 2 + (tag == "b"))
        add_images(index, copies, device="cpu", progress=False)
    engine = open_engine(index)
    try:
        store = engine.store
        group_of = {r: r for r in originals}
        for row in range(store.count):
            name = Path(store.item(row)["uri"]).name
            if Path(store.item(row)["uri"]).parent == copies.resolve():
                group_of[row] = int(name.split("_")[0])
        truth = {(a, b) for a in group_of for b in group_of if a < b and group_of[a] == group_of[b]}
        sweep = []
        for threshold in thresholds:
            found = {(a, b) for g in near_duplicates(store, threshold) for a in g.ids for b in g.ids if a < b}
            hit = len(found & truth)
            sweep.append({"threshold": threshold, "precision": hit / max(1, len(found)),
                          "recall": hit / max(1, len(truth)), "pairs_found": len(found)})
        mmr = _mmr(engine, [c for c in [store.item(r)["captions"][0] for r in originals[:50]]], group_of, cfg.k)
    finally:
        engine.close()  # its knowledge base is the caller's (shared)
    best = max(sweep, key=lambda s: (min(s["precision"], s["recall"]), s["threshold"]))
    return {"copies": 2 * len(originals), "true_pairs": len(truth), "best": best, "sweep": sweep, **mmr}


def _mmr(engine: Any, queries: list[str], group_of: dict[int, int], k: int) -> dict[str, Any]:
    """Hits in the top k whose copy group already showed up above them, plain vs MMR."""
    def repeats(hits: list[Any]) -> int:
        seen: set[int] = set()
        count = 0
        for hit in hits:
            group = group_of.get(hit.id)
            count += group is not None and group in seen
            seen.add(group if group is not None else -1 - hit.id)
        return count

    out = {"mmr_queries": len(queries)}
    plain_hits = [engine.search(SearchRequest(text=q, k=k)).hits for q in queries]
    zero_hits = [engine.search(SearchRequest(text=q, k=k, diversity=0.0)).hits for q in queries]
    half_hits = [engine.search(SearchRequest(text=q, k=k, diversity=0.5)).hits for q in queries]
    out["mmr_0_equals_plain"] = all([(h.id, h.score) for h in a] == [(h.id, h.score) for h in b]
                                    for a, b in zip(plain_hits, zero_hits, strict=True))
    out["repeated_copies_plain"] = sum(repeats(h) for h in plain_hits)
    out["repeated_copies_mmr_0.5"] = sum(repeats(h) for h in half_hits)
    return out
