"""`bench retrieval` comparison form: several rewriters and a fine-tuned model in one table (issue 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_clip_train import make_toy_karpathy


def test_bench_retrieval_compares_rewriters(tiny_clip_dir: Path, tmp_path: Path, capsys) -> None:
    from evdsearch.cli import main
    from evdsearch.indexer.kb import KnowledgeBase

    data = tmp_path / "toy"
    make_toy_karpathy(data, {"train": 1, "test": 2})
    kb_dir = tmp_path / "kb"
    with KnowledgeBase.open(kb_dir, readonly=False) as kb:
        kb.import_records([{"entity": "tomato", "description": "a red round fruit", "source": "test",
                            "score": 1.0, "kind": "visual"}])
    out = tmp_path / "table"
    argv = ["bench", "retrieval", "--data", str(data), "--kb", str(kb_dir), "--model", str(tiny_clip_dir),
            "--modes", "original,fused", "--rewriter", "template", "--rewriter", "nothing=none",
            "--finetuned-model", f"tuned={tiny_clip_dir}", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    assert f"{out}/rewriter_results.md" in capsys.readouterr().out
    report = json.loads((out / "rewriter_results.json").read_text())
    labels = [r["label"] for r in report["rows"]]
    assert labels == ["CLIP original", "fused + template", "fused + nothing", "tuned original",
                      "tuned + fused + nothing"]
    by_label = {r["label"]: r for r in report["rows"]}
    # the "none" rewriter leaves queries unchanged, so fusing it changes nothing
    assert by_label["fused + nothing"]["all"] == by_label["CLIP original"]["all"]
    assert by_label["tuned original"]["all"] == by_label["CLIP original"]["all"]  # same weights
    assert (out / "rewriter_results.png").stat().st_size > 0
    assert "| fused + template |" in (out / "rewriter_results.md").read_text()


def test_comparison_needs_out(tiny_clip_dir: Path) -> None:
    from evdsearch.benchmarks.retrieval_cli import comparison_from_args
    from evdsearch.cli import build_parser
    from evdsearch.errors import InvalidInput

    args = build_parser().parse_args(["bench", "retrieval", "--data", "d", "--model", str(tiny_clip_dir),
                                      "--rewriter", "template", "--rewriter", "none"])
    with pytest.raises(InvalidInput, match="--out"):
        comparison_from_args(args)


def test_one_rewriter_keeps_the_one_model_report(tiny_clip_dir: Path) -> None:
    from evdsearch.benchmarks.retrieval_cli import comparison_from_args, config_from_args, is_comparison
    from evdsearch.cli import build_parser

    base = ["bench", "retrieval", "--data", "d", "--model", str(tiny_clip_dir), "--modes", "original,fused",
            "--kb", "kb", "--rewriter", "PRO=runs/pro"]
    args = build_parser().parse_args(base)
    assert not is_comparison(args) and config_from_args(args).rewriter == "runs/pro"
    args = build_parser().parse_args(base + ["--out", "table"])  # --out alone asks for the table
    assert is_comparison(args)
    assert [r.label for r in comparison_from_args(args).rows] == ["CLIP original", "fused + PRO"]
