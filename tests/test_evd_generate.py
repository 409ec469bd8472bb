"""EVD generation against a loopback OpenAI-compatible server: output format, extraction, resume after a kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from test_llm_fakeserver import FakeOpenAI

import evdsearch.cli
from evdsearch.training.evd.store import EvdStore, progress_path

REPO = Path(__file__).resolve().parents[1]
# Runs the real dispatcher.
RUN_CLI = "import sys, evdsearch.cli as c; sys.exit(c.main(sys.argv[1:]))"


def canned(messages: list[dict[str, str]]) -> str:
    """Deterministic answers: an entity list for extraction prompts, a numbered list otherwise."""
    question = messages[-1]["content"]
    if question.startswith("List the visual entities"):
        return "Here are the visual entities:\n1. **Zebra**\n2. a red cube\n3. unicorn"
    entity = re.search(r"(?:distinguishing|what|does|recognise) an? (.+?) (?:in|looks|have|at)\b", question).group(1)
    return (f"Here are some features of a {entity}:\n1. **Colour:** A {entity} is red and white.\n"
            f"2. It has a round body with thin stripes.\n3. It is {len(question)} units wide. Also its")


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch):
    with FakeOpenAI(responder=canned).serve() as fake:
        monkeypatch.setenv("EVDSEARCH_LLM_BASE_URL", fake.url)
        monkeypatch.setenv("EVDSEARCH_LLM_MODEL", "fake-llm")
        yield fake


def test_generate_writes_importable_records_and_counts_tokens(
        llm_env: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "entities.txt").write_text("zebra\nglimmerfin\n")
    out = tmp_path / "evds.jsonl"
    code = evdsearch.cli.main(["evd", "generate", "--entities", str(tmp_path / "entities.txt"), "--out", str(out),
                               "--llm", "openai", "--per-entity", "2", "--no-progress", "--price-in", "0.5",
                               "--price-out", "1.5"])
    assert code == 0
    records = _read_jsonl(out)
    assert len(llm_env.requests) == 2 * 3 * 2  # entities x default prompts x samples
    provenance = ("max_new_tokens", "model", "prompt", "prompt_version", "sample", "seed", "temperature")
    assert {tuple(sorted(r)) for r in records} == {tuple(sorted(("description", "entity", "score", "source",
                                                                 *provenance)))}
    assert {r["prompt_version"] for r in records} == {1}
    assert all(r["temperature"] == (0.0 if r["sample"] == 0 else 0.7) for r in records)
    assert {r["source"] for r in records} == {"llm:fake-llm"}
    zebra = [r["description"] for r in records if r["entity"] == "zebra"]
    assert zebra[:2] == ["Colour: A zebra is red and white.", "It has a round body with thin stripes."]
    assert not any(d.startswith("Here are") or d.endswith("its.") for d in zebra)  # filler, cut-off tail
    assert len(set(zebra)) == len(zebra)  # the same sentence from another prompt is not repeated
    first = [r for r in records if r["prompt"] == "features" and r["sample"] == 0 and r["entity"] == "zebra"]
    assert [r["score"] for r in first] == [1.0, 0.5, 0.3333]
    sent = llm_env.requests
    assert {r["temperature"] for r in sent} == {0.0, 0.7} and len({r["seed"] for r in sent}) == 12
    assert "distinguishing a zebra in a photo" in sent[0]["messages"][-1]["content"]
    stdout = capsys.readouterr().out
    progress = _read_jsonl(progress_path(out))
    tokens_in = sum(p["prompt_tokens"] for p in progress)
    tokens_out = sum(p["completion_tokens"] for p in progress)
    cost = tokens_in / 1000 * 0.5 + tokens_out / 1000 * 1.5
    assert f"tokens this run: {tokens_in} in, {tokens_out} out (cost {cost:.4f})" in stdout
    kb_records = pytest.importorskip("evdsearch.indexer.kb_records")
    assert len(kb_records.read_import_file(out)) == len(records)  # `evdsearch kb import` accepts it as is


def test_generate_from_captions_extracts_grounded_entities(llm_env: FakeOpenAI, tmp_path: Path) -> None:
    captions = tmp_path / "dataset.json"
    sentences = [{"raw": "A zebra stands beside a red cube."}, {"raw": "A zebra stands beside a red cube."},
                 {"raw": "A small zebra runs."}]
    captions.write_text(json.dumps({"dataset": "t", "images": [
        {"filename": "0.png", "split": "test", "sentences": sentences}]}))
    out = tmp_path / "evds.jsonl"
    assert evdsearch.cli.main(["evd", "generate", "--captions", str(captions), "--out", str(out), "--llm",
                               "openai", "--per-entity", "1", "--prompts", "features", "--no-progress"]) == 0
    extract = [p for p in _read_jsonl(progress_path(out)) if p["stage"] == "extract"]
    assert [p["entities"] for p in extract] == [["zebra", "red cube"], ["zebra"]]  # unicorn is not in a caption
    assert Counter(r["entity"] for r in _read_jsonl(out)).keys() == {"zebra", "red cube"}
    requests_before = len(llm_env.requests)
    assert evdsearch.cli.main(["evd", "generate", "--captions", str(captions), "--out", str(out), "--llm",
                               "openai", "--per-entity", "1", "--prompts", "features", "--no-progress"]) == 0
    assert len(llm_env.requests) == requests_before  # all done: a rerun asks nothing


def _generate_cmd(entities: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", RUN_CLI, "evd", "generate", "--entities", str(entities), "--out", str(out),
            "--llm", "openai", "--per-entity", "2", "--no-progress", "--timeout", "30"]


def test_killed_run_resumes_without_duplicates(tmp_path: Path) -> None:
    entities = tmp_path / "entities.txt"
    entities.write_text("zebra\nglimmerfin\nboxlet\n")
    total = 3 * 3 * 2
    out, reference = tmp_path / "evds.jsonl", tmp_path / "reference.jsonl"
    with FakeOpenAI(responder=canned, block_after=5).serve() as fake:
        env = {**os.environ, "PYTHONPATH": str(REPO), "EVDSEARCH_LLM_BASE_URL": fake.url,
               "EVDSEARCH_LLM_MODEL": "fake-llm"}
        proc = subprocess.Popen(_generate_cmd(entities, out), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(fake.requests) <= 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # the 6th request is blocked: 5 calls are on disk
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(_read_jsonl(progress_path(out))) == 5
        fake.block_after = None
        fake.release.set()
        resumed = subprocess.run(_generate_cmd(entities, out), cwd=REPO, env=env, capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert "(5 calls already done)" in resumed.stdout
        assert len(fake.requests) == 6 + total - 5
        clean = subprocess.run(_generate_cmd(entities, reference), cwd=REPO, env=env, capture_output=True)
        assert clean.returncode == 0
    progress = _read_jsonl(progress_path(out))
    keys = [(p["entity"], p["prompt"], p["sample"]) for p in progress]
    assert len(keys) == len(set(keys)) == total
    assert out.read_text() == reference.read_text()  # same lines as a run that was never interrupted


def test_store_repairs_a_torn_line_and_orphan_records(tmp_path: Path) -> None:
    out = tmp_path / "evds.jsonl"
    done = {"entity": "zebra", "description": "A zebra has stripes.", "source": "llm:x", "score": 1.0,
            "prompt": "features", "sample": 0}
    orphan = {**done, "description": "Its mane is short.", "sample": 1}  # its call never reached the log
    out.write_text(json.dumps(done) + "\n" + json.dumps(orphan) + "\n" + '{"entity": "zeb')
    progress_path(out).write_text(json.dumps({"stage": "describe", "entity": "zebra", "prompt": "features",
                                              "sample": 0, "prompt_tokens": 7, "completion_tokens": 9}) + "\n{")
    store = EvdStore.open(out)
    assert store.done == {("zebra", "features", 0)}
    assert (store.prompt_tokens, store.completion_tokens, store.n_descriptions) == (7, 9, 1)
    assert _read_jsonl(out) == [done]
    assert progress_path(out).read_text().endswith("}\n")
    written = store.add_description_call(("zebra", "features", 1), [orphan, {**done, "sample": 1}], {"n": 2})
    assert written == 1  # the repeated sentence is skipped
    assert [r["description"] for r in _read_jsonl(out)] == ["A zebra has stripes.", "Its mane is short."]
