"""Adaptive fusion: KB weights, `kb calibrate`, the engine's per-query alpha, DEQR regimes, `bench quality`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_engine_support import build_index, build_kb, open_engine

from evdsearch import cli
from evdsearch.engine.alpha import AlphaPolicy
from evdsearch.errors import UserError
from evdsearch.indexer.kb import EntityWeight, KnowledgeBase
from evdsearch.search_api import SearchRequest
from evdsearch.versioned import current_version

QUERY = "two tomatoes next to a school bus"


def test_kb_weights_round_trip_and_checks(tmp_path: Path) -> None:
    kb_dir = build_kb(tmp_path / "kb")
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.weights() == {} and kb.weight("tomato") is None  # never calibrated
    with KnowledgeBase.open(kb_dir, readonly=False) as kb:
        with pytest.raises(UserError, match="not in the knowledge base"):
            kb.set_weights({"zorblax": EntityWeight(0.5, "captions", 3)})
        with pytest.raises(UserError, match=r"\[0, 1\]"):
            kb.set_weights({"tomato": EntityWeight(1.5, "captions", 3)})
        kb.set_weights({"tomato": EntityWeight(0.9, "zero-shot", 0, 0.1)}, {"splits": ["train"]})
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.weight("Tomatoes") == EntityWeight(0.9, "zero-shot", 0, 0.1)
        assert kb.calibration_info() == {"splits": ["train"]}
        with pytest.raises(UserError, match="read-only"):
            kb.set_weights({})


def test_alpha_policy_combines_entity_weights() -> None:
    policy = AlphaPolicy(weights={"a": 0.9, "b": 0.3}, default=0.5)  # combine: the largest weight
    assert policy.resolve(None, []) == 0.5
    assert policy.resolve(None, ["a", "b"]) == pytest.approx(0.9)
    assert policy.resolve(None, ["b", "unknown"]) == pytest.approx(0.5)  # unknown entity: the default
    mean = AlphaPolicy(weights={"a": 0.9, "b": 0.3}, default=0.5, combine="mean")
    assert mean.resolve(None, ["a", "b"]) == pytest.approx(0.6)
    assert AlphaPolicy(weights={}, default=0.4).resolve(None, ["a"]) == 0.4  # no calibration: the default


def test_alpha_is_decided_in_one_order() -> None:
    """request > fixed > calibrated > default."""
    calibrated = AlphaPolicy(default=0.5, weights={"a": 0.9})
    fixed = AlphaPolicy(default=0.5, fixed=0.2, weights={"a": 0.9})
    assert calibrated.resolve(0.1, ["a"]) == fixed.resolve(0.1, ["a"]) == 0.1  # the request's own alpha wins
    assert fixed.resolve(None, ["a"]) == 0.2 and not fixed.adaptive  # then the fixed one, calibration ignored
    assert calibrated.resolve(None, ["a"]) == 0.9 and calibrated.adaptive  # then the calibrated weight
    assert calibrated.resolve(None, ["b"]) == calibrated.resolve() == 0.5  # then the default
    with pytest.raises(ValueError, match="combine"):
        AlphaPolicy(combine="median")


@pytest.fixture(scope="module")
def calibrated_parts(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("adaptive")
    index, kb_dir = build_index(root, tiny_clip_dir), build_kb(root / "kb")
    with KnowledgeBase.open(kb_dir, readonly=False) as kb:
        kb.set_weights({"tomato": EntityWeight(0.9, "captions", 4), "school bus": EntityWeight(0.3, "zero-shot", 0)})
    return index, kb_dir


def test_engine_uses_kb_weights_and_overrides(calibrated_parts: tuple[Path, Path]) -> None:
    index, kb_dir = calibrated_parts
    with open_engine(index, kb_dir) as engine:
        resp = engine.search(SearchRequest(text=QUERY, k=5, explain=True))
        assert resp.explanation.alpha == pytest.approx(0.9)  # the larger of tomato 0.9 and school bus 0.3
        for hit in resp.hits:  # the hits are ranked by that weight
            assert hit.score == pytest.approx(0.1 * hit.original_score + 0.9 * hit.rewritten_score, abs=1e-5)
        only_bus = engine.search(SearchRequest(text="a school bus", k=3, explain=True)).explanation
        assert only_bus.alpha == pytest.approx(0.3)
        asked = engine.search(SearchRequest(text=QUERY, k=5, alpha=0.2, explain=True))
        assert asked.explanation.alpha == pytest.approx(0.2)  # a request's alpha wins
        assert asked.hits[0].score == pytest.approx(0.8 * asked.hits[0].original_score
                                                    + 0.2 * asked.hits[0].rewritten_score, abs=1e-5)
        image = engine.search(SearchRequest(embedding=np.ones(engine.dim), k=2, explain=True)).explanation
        assert image.alpha is None
    with open_engine(index, kb_dir, alpha=0.35, adaptive_alpha=False) as fixed:  # --fixed-alpha 0.35
        assert fixed.search(SearchRequest(text=QUERY, k=5, explain=True)).explanation.alpha == pytest.approx(0.35)


def test_explanation_alpha_reaches_the_proto(calibrated_parts: tuple[Path, Path]) -> None:
    from evdsearch.proto.convert import response_to_proto

    index, kb_dir = calibrated_parts
    with open_engine(index, kb_dir) as engine:
        msg = response_to_proto(engine.search(SearchRequest(text="a tomato", k=2, explain=True)))
    assert msg.explanation.HasField("alpha") and msg.explanation.alpha == pytest.approx(0.9)


def test_fixed_alpha_flag_is_checked() -> None:
    import argparse

    from evdsearch.engine.cli.config import fusion_settings
    from evdsearch.engine_options import add_fusion_options
    from evdsearch.errors import InvalidInput

    parser = argparse.ArgumentParser()
    add_fusion_options(parser)
    assert fusion_settings(parser.parse_args([])) == {"alpha": 0.5, "adaptive_alpha": True, "template_ensemble": True}
    assert fusion_settings(parser.parse_args(["--fixed-alpha", "0.2", "--no-template-ensemble"])) == {
        "alpha": 0.2, "adaptive_alpha": False, "template_ensemble": False}
    with pytest.raises(InvalidInput, match="--fixed-alpha"):
        fusion_settings(argparse.Namespace(fixed_alpha=2.0))


@pytest.fixture(scope="module")
def world_root(tmp_path_factory: pytest.TempPathFactory, tiny_world: Path, tiny_clip_dir: Path) -> Path:
    """A world root: world/ (the tiny shapes world), clip/ and a calibrated kb/ (train,val)."""
    root = tmp_path_factory.mktemp("quality_root")
    (root / "world").symlink_to(tiny_world)
    (root / "clip").symlink_to(tiny_clip_dir)
    assert cli.main(["kb", "import", str(tiny_world / "encyclopedia.jsonl"), "--kb", str(root / "kb")]) == 0
    (root / "imported_version").write_text(current_version(root / "kb").name)
    assert cli.main(["kb", "calibrate", "--kb", str(root / "kb"), "--data", str(tiny_world), "--model",
                     str(tiny_clip_dir), "--device", "cpu", "--max-captions", "5",
                     "--cache-dir", str(root / "cache")]) == 0
    return root


def test_calibrate_writes_a_weight_per_entity(world_root: Path) -> None:
    with KnowledgeBase.open(world_root / "kb") as kb:
        weights, entities, info = kb.weights(), kb.entities(), kb.calibration_info()
    assert set(weights) == set(entities)
    assert {w.method for w in weights.values()} <= {"captions", "zero-shot"}
    assert any(w.method == "captions" and w.evidence > 0 for w in weights.values())
    assert all(0.0 <= w.alpha <= 1.0 and w.familiarity is not None for w in weights.values())
    assert info["splits"] == ["train", "val"] and info["stand_ins"] == info["captions"] > 0
    assert info["template_ensemble"] is False  # the template rewriter has no second rewrite to average with


def test_calibrate_ranks_every_description_by_evidence(world_root: Path) -> None:
    """Captioned entities are ranked by their images, the rest by agreement; the KB serves them in that order."""
    with KnowledgeBase.open(world_root / "kb") as kb:
        ranked, entities = kb.calibration_info()["descriptions_ranked"], kb.entities()
        lists = [kb.get(e) for e in entities]
        calibrated = [e for e, w in kb.weights().items() if w.method == "captions"]
    assert ranked == {"captions": len(calibrated), "consensus": len(entities) - len(calibrated)}
    for descriptions in lists:
        values = [d.evidence for d in descriptions]
        assert None not in values and values == sorted(values, reverse=True)


def test_keep_description_order_leaves_the_import_order(world_root: Path, tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    assert cli.main(["kb", "import", str(world_root / "world" / "encyclopedia.jsonl"), "--kb", str(kb_dir)]) == 0
    with KnowledgeBase.open(kb_dir) as kb:
        imported = {e: kb.get(e) for e in kb.entities()}
    assert cli.main(["kb", "calibrate", "--kb", str(kb_dir), "--data", str(world_root / "world"), "--model",
                     str(world_root / "clip"), "--device", "cpu", "--max-captions", "5", "--splits", "train",
                     "--keep-description-order", "--cache-dir", str(world_root / "cache")]) == 0
    with KnowledgeBase.open(kb_dir) as kb:
        assert {e: kb.get(e) for e in kb.entities()} == imported and kb.weights()
        assert kb.calibration_info()["descriptions_ranked"] is None


def test_calibrate_publishes_a_new_kb_version(world_root: Path) -> None:
    """Calibration never writes the version a server may have mapped: it copies, writes, then swaps."""
    imported = world_root / "kb" / "versions" / (world_root / "imported_version").read_text()
    assert current_version(world_root / "kb") != imported
    with KnowledgeBase.open(imported) as old:
        assert old.weights() == {}  # the imported version is untouched
    assert cli.main(["verify", str(world_root / "kb")]) == 0


def test_calibrate_refuses_the_test_split(world_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["kb", "calibrate", "--kb", str(world_root / "kb"), "--data", str(world_root / "world"),
                     "--model", str(world_root / "clip"), "--splits", "train,test"])
    assert code == 2
    assert "evdsearch: error: refusing to calibrate on --splits test" in capsys.readouterr().err


def test_bench_quality_runs_end_to_end(world_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "quality"
    assert cli.main(["bench", "quality", "--world", str(world_root), "--kb", "tv=kb", "--rewriter", "template",
                     "--out", str(out), "--bootstrap", "20", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"png: {out / 'quality.png'}" in printed and (out / "quality.png").stat().st_size > 0
    report = json.loads((out / "quality.json").read_text())
    assert list(report["table"]) == ["original", "fused a=0.5 + template", "fused adaptive[tv] + template"]
    n_test = sum(len(im["sentences"]) for im in json.loads((world_root / "world" / "dataset_shapes.json")
                                                           .read_text())["images"] if im["split"] == "test")
    for entry in report["table"].values():
        cell = entry["by_kind"]["all"]["R@1"]
        assert entry["by_kind"]["all"]["n"] == n_test
        assert cell["ci"][0] <= cell["mean"] <= cell["ci"][1]
    assert "p_vs_original" in report["table"]["fused adaptive[tv] + template"]["by_kind"]["all"]["R@1"]
    assert (out / "index" / world_root.name / "manifest.json").is_file()  # built with evdsearch.indexer
    assert "| original |" in (out / "quality.md").read_text()


def test_deqr_both_regimes(tmp_path: Path, tiny_world: Path, tiny_clip_dir: Path) -> None:
    """Regime both: known captions keep their names (and can keep the caption), stand-ins get made-up names."""
    from evdsearch.training.deqr.build import build_deqr
    from evdsearch.training.deqr.config import DeqrConfig
    from evdsearch.training.deqr.io import read_records, read_stats

    kb = tmp_path / "kb"
    assert cli.main(["kb", "import", str(tiny_world / "encyclopedia.jsonl"), "--kb", str(kb)]) == 0
    with KnowledgeBase.open(kb) as opened:
        names = set(opened.entities())
    # alpha=0 scores every candidate as the caption itself: ties go to candidate 0, so "keep" must win.
    for alpha, want_keep in ((0.0, True), (0.5, None)):
        out = build_deqr(DeqrConfig(data=str(tiny_world), kb=str(kb), clip=str(tiny_clip_dir),
                                    out=str(tmp_path / f"deqr{alpha}"), max_images=20, max_candidates=4,
                                    batch_images=8, regime="both", stand_in_share=0.5, alpha=alpha, device="cpu"))
        records, stats = list(read_records(out)), read_stats(out)
        assert set(stats["regimes"]) == {"known", "stand-in"}
        for record in records:
            words = record["caption"].lower()
            if record["regime"] == "stand-in":
                assert not set(record["entities"]) & names and all(e in words for e in record["entities"])
                assert all(e in record["input"] for e in record["entities"])
            else:
                assert set(record["entities"]) <= names
        if want_keep:
            assert all(r["candidates"][0]["phrasing"] == "empty" for r in records)
            assert stats["regimes"]["known"]["keep_best"] == stats["regimes"]["known"]["captions"] > 0


def test_stand_in_names_never_run_out() -> None:
    """More stand-ins than three-syllable words exist (DEQR on 6,000 images): all distinct, and it returns."""
    import random

    from evdsearch.evaluation.fusion_fit import nonce_name

    rng, taken = random.Random(0), set()
    names = [nonce_name(rng, taken) for _ in range(5000)]
    assert len(set(names)) == 5000
    assert max(len(n) for n in names) > min(len(n) for n in names)  # longer words once three syllables ran short


def test_bench_quality_rewriter_alone_rows(world_root: Path, tmp_path: Path) -> None:
    """--rewriter rows are ensembled with the template (as served); --rewriter-alone rows are not; labels differ."""
    from evdsearch.benchmarks.quality_cli import worlds_from_args
    from evdsearch.cli import build_parser
    from evdsearch.errors import InvalidInput

    def parse_bench_quality(argv: list[str]) -> Any:
        return build_parser().parse_args(["bench", "quality", *argv])

    rewriter_dir = world_root / "clip"  # any folder passes the path check; nothing is loaded here
    args = parse_bench_quality(["--world", str(world_root), "--kb", "tv=kb", "--rewriter", f"PRO={rewriter_dir}",
                                "--rewriter-alone", f"PRO alone={rewriter_dir}", "--out", str(tmp_path)])
    (world,) = worlds_from_args(args)
    assert list(world.rewriters) == ["PRO", "PRO alone"] and world.alone == ("PRO alone",)
    clash = parse_bench_quality(["--world", str(world_root), "--kb", "kb", "--rewriter", f"PRO={rewriter_dir}",
                                 "--rewriter-alone", f"PRO={rewriter_dir}", "--out", str(tmp_path)])
    with pytest.raises(InvalidInput, match="rewriter labels must differ"):
        worlds_from_args(clash)


def test_captions_override_the_fit_only_beyond_one_standard_error() -> None:
    from evdsearch.evaluation.fusion_fit import captions_or_prior

    grid = (0.0, 0.5, 1.0)
    rng = np.random.default_rng(0)
    clear = np.column_stack([np.full(40, 0.2), np.full(40, 0.3), rng.uniform(0.8, 1.0, 40)])  # 1.0 wins by far
    assert captions_or_prior(clear, grid, prior=0.1) == 1.0
    base = rng.uniform(0.3, 0.7, 40)
    swing = np.where(np.arange(40) % 2 == 0, 0.3, -0.3)  # mean 0, standard error of the difference ~0.05
    noisy = np.column_stack([base, base - 0.1, base + 0.02 + swing])  # 1.0 ahead of 0.0 by 0.02 only
    assert int(np.argmax(noisy.mean(axis=0))) == 2
    assert captions_or_prior(noisy, grid, prior=0.1) == 0.0  # the fit's nearest grid point
    assert captions_or_prior(clear[:1], grid, prior=0.6) == 0.5  # one caption: no standard error, the fit
