"""The README's main command on a small world: every stage runs through the public CLI, a second run reuses
what the first built, and the engine it leaves behind answers with the ONNX text encoder."""

from pathlib import Path

import pytest

from evdsearch.cli import main
from evdsearch.engine.api import EngineConfig
from evdsearch.engine.search import SearchEngine
from evdsearch.search_api import SearchRequest

pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_quickstart_builds_every_stage_then_reuses_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workdir = tmp_path / "qs"
    argv = ["quickstart", "--workdir", str(workdir), "--small", "--steps", "2", "--no-serve"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "clip text agreement" in first
    for artefact in ("world/dataset_shapes.json", "clip/open_clip_config.json", "clip/onnx/clip_text.onnx",
                     "kb/data.mdb", "index/manifest.json"):
        assert (workdir / artefact).is_file(), artefact

    assert main(argv) == 0
    second = capsys.readouterr().out
    assert second.count("already there, reusing it") == 6

    config = EngineConfig(index_dir=str(workdir / "index"), kb_dir=str(workdir / "kb"), rewriter="template")
    with SearchEngine.open(config) as engine:
        assert hasattr(engine.clip, "text_encoder")  # the export was picked up, not torch
        assert engine.alpha_policy.adaptive  # the quickstart calibrated the KB: adaptive fusion by default
        response = engine.search(SearchRequest(text="a tomato next to a school bus", k=5, explain=True))
    assert len(response.hits) == 5
    assert response.explanation.rewritten_query != "a tomato next to a school bus"
    # The KB holds what an LLM wrote (the shipped selection), not the world's own encyclopedia.
    sources = {d.source for group in response.explanation.descriptions.values() for d in group}
    assert sources == {"llm:Qwen2.5-Coder-1.5B-Instruct"}, sources
