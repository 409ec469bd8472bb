"""`evdsearch search` with the new options and `evdsearch dedup`, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_engine_support import build_kb, build_metadata_index, open_engine, serving

from evdsearch.engine.grpc_server.server import RunningServer
from evdsearch.indexer.dedup import near_duplicates
from evdsearch.indexer.store import IndexStore


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clifeatures")
    return build_metadata_index(root, tiny_clip_dir), build_kb(root / "kb")


@pytest.fixture(scope="module")
def server(index: tuple[Path, Path]) -> RunningServer:
    with open_engine(*index) as engine, serving(engine) as running:
        yield running


def test_search_options(server: RunningServer, evd) -> None:  # noqa: ANN001
    code, out, _ = evd("search", "--terms", '{"a red circle": 1, "tomato": -0.5}', "--server", server.address,
                       "-k", "3", "--filter", "rank < 6", "--metadata", "--explain")
    assert code == 0 and "3 hits for" in out and "color=" in out and "rank=" in out
    assert "term 'tomato' weight -0.5" in out and "filter: rank < 6 (6 images match)" in out
    code, out, _ = evd("search", "a red circle", "--server", server.address, "-k", "4", "--offset", "2",
                       "--min-relative", "0", "--diversity", "0.3", "--json")
    assert code == 0 and len(json.loads(out)["hits"]) == 4
    code, out, _ = evd("search", "--like", "3", "--server", server.address, "-k", "11", "--json")
    assert code == 0 and 3 not in [int(h.get("id", 0)) for h in json.loads(out)["hits"]]


@pytest.mark.parametrize("argv, message", [
    (["--terms", "{bad"], "--terms must be a JSON object"),
    (["--terms", '{"x": "heavy"}'], "must be a number"),
    (["x", "--filter", "(" * 100 + "rank == 1" + ")" * 100], "nests deeper than 16 levels"),
    (["x", "--filter", "colour == 1"], "unknown field 'colour'"),
    (["x", "--offset", "4999", "-k", "2"], "deepest page"),
])
def test_search_refusals_are_one_line(server: RunningServer, evd, argv: list[str], message: str) -> None:  # noqa: ANN001
    code, _, err = evd("search", *argv, "--server", server.address)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_dedup_finds_copies(index: tuple[Path, Path], evd, tmp_path: Path) -> None:  # noqa: ANN001
    store = IndexStore.open(index[0])
    vectors = np.asarray(store.embeddings)
    closest = float(np.max(vectors @ vectors.T - 2 * np.eye(len(vectors))))
    threshold = (closest + 1.0) / 2  # above every pair of distinct images
    assert near_duplicates(store, threshold) == []
    code, out, _ = evd("dedup", str(index[0]), "--threshold", "-1", "--json")
    groups = json.loads(out)
    assert code == 0 and len(groups) == 1 and groups[0]["ids"] == list(range(12))
    code, out, _ = evd("dedup", str(index[0]), "--threshold", str(threshold))
    assert code == 0 and out.startswith("0 near-duplicate groups")
