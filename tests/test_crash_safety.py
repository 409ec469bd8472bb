"""kill -9 at seeded random moments of `evdsearch index --force` and `evdsearch kb import`; `verify` after each.

Each round runs the real CLI (`evdsearch.cli.main`) in a child forked from a forkserver that preloaded torch,
so a round costs the build, not the interpreter start; the slow variant does the same with many more rounds.
After every kill the folder must verify and hold the old or the new content, never a mix or nothing.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path

import pytest
from test_engine_support import write_noise_images

from evdsearch import cli
from evdsearch.indexer.kb import KnowledgeBase
from evdsearch.indexer.verify import verify_path
from evdsearch.versioned import current_version, version_ids

SEED = 13
PRELOAD = ["torch", "open_clip", "faiss", "lmdb", "evdsearch.indexer.build", "evdsearch.indexer.kb_publish",
           "evdsearch.indexer.verify", "evdsearch.cli"]  # the dispatcher and every verb module: a child then
# starts in ~0.2 s, not seconds


def write_kb_file(path: Path, entity: str) -> Path:
    lines = [{"entity": entity, "description": f"{entity} look {i}", "source": "s", "score": i / 10}
             for i in range(5)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def ctx() -> mp.context.ForkServerContext:
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def run_child(ctx, argv: list[str], kill_after: float | None) -> tuple[bool, float]:
    """Run `evdsearch ARGV` in a child; SIGKILL it after `kill_after` s. Returns (killed, seconds)."""
    start = time.perf_counter()
    child = ctx.Process(target=cli.main, args=(argv,))
    child.start()
    child.join(kill_after)
    if child.is_alive():
        child.kill()  # tolerates a child that ended (and its forkserver reaped it) after is_alive()
        child.join()
    killed = child.exitcode == -signal.SIGKILL
    if not killed:
        assert child.exitcode == 0, f"evdsearch {' '.join(argv)} failed"
    return killed, time.perf_counter() - start


def index_count(path: Path) -> int:
    report = verify_path(path)  # raises with the first problem
    assert report.kind == "index"
    return json.loads((report.version / "manifest.json").read_text())["count"]


def kb_entities(path: Path) -> list[str]:
    assert verify_path(path).kind == "kb"
    with KnowledgeBase.open(path) as kb:
        return kb.entities()


def kill_rounds(ctx, tmp_path: Path, clip_dir: Path, index_rounds: int, kb_rounds: int) -> dict[str, tuple[int, int, int]]:
    """{"index"|"kb": (rounds survived, rounds tried, rounds where the kill landed before the end)}."""
    rng = random.Random(SEED)
    sources = {6: write_noise_images(tmp_path / "a", 6, 0), 9: write_noise_images(tmp_path / "b", 9, 1)}
    out = tmp_path / "index"

    def index_argv(n: int) -> list[str]:
        return ["index", str(sources[n]), "--out", str(out), "--model", str(clip_dir), "--force",
                "--device", "cpu", "--workers", "1", "--batch-size", "4", "--no-progress"]

    run_child(ctx, index_argv(6), None)
    _, full = run_child(ctx, index_argv(9), None)  # calibrates the moments: a whole build, child start included
    results = {}
    survived = killed_early = 0
    for _ in range(index_rounds):
        n = rng.choice(sorted(sources))
        before = index_count(out)
        killed, _ = run_child(ctx, index_argv(n), rng.uniform(0, full * 1.1))
        killed_early += killed
        try:
            survived += index_count(out) in ({before, n} if killed else {n})  # the old or the new index
        except Exception:  # noqa: BLE001 - counted as a failed round, reported below
            pass

    results["index"] = (survived, index_rounds, killed_early)

    kb = tmp_path / "kb"
    run_child(ctx, ["kb", "import", str(write_kb_file(tmp_path / "e0.jsonl", "e0")), "--kb", str(kb)], None)
    _, full = run_child(ctx, ["kb", "import", str(write_kb_file(tmp_path / "e1.jsonl", "e1")), "--kb", str(kb)],
                        None)
    survived = killed_early = 0
    for i in range(kb_rounds):
        entity = f"f{i}"
        argv = ["kb", "import", str(write_kb_file(tmp_path / f"{entity}.jsonl", entity)), "--kb", str(kb)]
        before = kb_entities(kb)
        killed, _ = run_child(ctx, argv, rng.uniform(0, full * 1.1))
        killed_early += killed
        after = sorted([*before, entity])
        try:
            survived += kb_entities(kb) in ([before, after] if killed else [after])  # old or new, nothing between
        except Exception:  # noqa: BLE001 - counted as a failed round
            pass
    results["kb"] = (survived, kb_rounds, killed_early)

    # The next clean writes sweep what the killed ones left, and keep only the current and previous version.
    run_child(ctx, index_argv(6), None)
    run_child(ctx, ["kb", "import", str(write_kb_file(tmp_path / "z.jsonl", "z")), "--kb", str(kb)], None)
    for folder in (out, kb):
        assert not [p for p in (folder / "versions").iterdir() if p.name.endswith(".partial")]
        assert len(version_ids(folder)) <= 2 and current_version(folder).name == version_ids(folder)[-1]
    assert index_count(out) == 6
    return results


def report(results: dict[str, tuple[int, int, int]]) -> None:
    for what, (survived, tried, early) in results.items():
        print(f"kill -9 {what}: {survived} rounds survived / {tried} tried ({early} killed before they finished)")


@pytest.mark.slow  # ~90 s on the loaded 2-core box: forkserver start (torch) + 22 real CLI runs
def test_kill9_index_and_kb_import(ctx, tmp_path: Path, tiny_clip_dir: Path) -> None:
    results = kill_rounds(ctx, tmp_path, tiny_clip_dir, index_rounds=8, kb_rounds=12)
    report(results)
    for survived, tried, early in results.values():
        assert survived == tried and early > 0


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EVDSEARCH_KILL_ROUNDS"), reason="set EVDSEARCH_KILL_ROUNDS=N for N rounds each")
def test_kill9_many_rounds(ctx, tmp_path: Path, tiny_clip_dir: Path) -> None:
    rounds = int(os.environ["EVDSEARCH_KILL_ROUNDS"])
    results = kill_rounds(ctx, tmp_path, tiny_clip_dir, index_rounds=rounds, kb_rounds=rounds)
    report(results)
    for survived, tried, _ in results.values():
        assert survived == tried
