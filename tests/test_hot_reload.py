"""Hot reload under load: a client searches without pause through a real gRPC channel while the index is rebuilt
with --force, the KB re-imported, and Reload / SIGHUP swap the engine: no failed search, Info changes."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from test_engine_support import build_index, build_kb, open_engine

from evdsearch import cli
from evdsearch.engine.grpc_server.server import RunningServer, build_server
from evdsearch.indexer.build import IndexBuildConfig
from evdsearch.indexer.build import build_index as run_build
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc
from evdsearch.versioned import publish_version

ROOT = Path(__file__).resolve().parent.parent


class Searcher(threading.Thread):
    """Searches back to back until stopped; counts answers and failures."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.done = threading.Event()
        self.ok = 0
        self.failed: list[str] = []

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            while not self.done.is_set():
                try:
                    resp = stub.Search(pb.SearchRequest(text="a tomato next to a school bus", k=3), timeout=30)
                    assert len(resp.hits) == 3
                    self.ok += 1
                except Exception as err:  # noqa: BLE001 - every failure is counted and shown
                    self.failed.append(repr(err))

    def stop(self) -> tuple[int, list[str]]:
        self.done.set()
        self.join(60)
        return self.ok, self.failed


def rebuild(index: Path, images: Path, n: int, clip_dir: Path) -> None:
    """`evdsearch index` --force over the first n images, into the served folder."""
    source = index.parent / f"src{n}"
    source.mkdir(exist_ok=True)
    for path in sorted(images.glob("*.png"))[:n]:
        shutil.copy(path, source / path.name)
    run_build(IndexBuildConfig(source=source, out=index, model=str(clip_dir), device="cpu", workers=1,
                               progress=False, force=True))


def kb_import(kb: Path, entity: str) -> None:
    """`evdsearch kb import` in its own process, as an operator would (the server holds the KB open)."""
    src = kb.parent / f"{entity}.jsonl"
    src.write_text(json.dumps({"entity": entity, "description": "d", "source": "s", "score": 1.0}) + "\n")
    done = subprocess.run([sys.executable, "-m", "evdsearch", "kb", "import", str(src), "--kb", str(kb)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture()
def served(tmp_path: Path, tiny_clip_dir: Path) -> tuple[RunningServer, Path, Path]:
    index, kb = build_index(tmp_path, tiny_clip_dir), build_kb(tmp_path / "kb")
    engine = open_engine(index, kb)
    running = build_server(engine, port=0, max_workers=4)
    running.start()
    yield running, index, kb
    running.stop(0)


def test_reload_rpc_under_load_fails_no_search(served, tiny_clip_dir: Path) -> None:
    running, index, kb = served
    with grpc.insecure_channel(running.address) as channel:
        search, admin = search_pb2_grpc.SearchServiceStub(channel), search_pb2_grpc.AdminServiceStub(channel)
        before = search.Info(pb.InfoRequest(), timeout=10)
        assert (before.generation, before.index_size, before.kb_entities) == (1, 12, 4) and before.loaded_at
        first_clip = running.reloader.holder.current.engine.clip
        client = Searcher(running.address)
        client.start()
        rebuild(index, index.parent / "data" / "images", 7, tiny_clip_dir)  # the served folder, in place
        kb_import(kb, "zebra")  # a new KB version; the server's pages are never written
        answer = admin.Reload(pb.ReloadRequest(), timeout=120)
        time.sleep(0.5)  # searches keep going on the new engine
        ok, failed = client.stop()
        after = search.Info(pb.InfoRequest(), timeout=10)
    print(f"searches during rebuild + kb import + Reload: {ok + len(failed)}, failed: {len(failed)}")
    assert failed == [] and ok > 0
    assert (answer.generation, answer.index_size, answer.kb_entities) == (2, 7, 5)
    assert (after.generation, after.index_size, after.kb_entities) == (2, 7, 5)
    assert running.reloader.holder._live == [running.reloader.holder.current]  # the old engine was closed
    assert running.reloader.holder.current.engine.clip is first_clip  # same CLIP built the index: kept, not reloaded


def test_failed_reload_keeps_serving(served, tiny_clip_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running, index, kb = served
    with publish_version(index, compat_files=("manifest.json",)) as staging:  # a broken index version
        (staging / "manifest.json").write_text("{not json")
    with grpc.insecure_channel(running.address) as channel:
        search, admin = search_pb2_grpc.SearchServiceStub(channel), search_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            admin.Reload(pb.ReloadRequest(), timeout=60)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "reload failed, still serving generation 1" in err.value.details()
        assert "not valid JSON" in err.value.details()
        assert len(search.Search(pb.SearchRequest(text="a tomato", k=2), timeout=10).hits) == 2
        assert search.Info(pb.InfoRequest(), timeout=10).generation == 1
        assert cli.main(["reload", "--server", running.address]) == 2  # the CLI says why in one line
        assert "FAILED_PRECONDITION: reload failed, still serving generation 1" in capsys.readouterr().err
        rebuild(index, index.parent / "data" / "images", 5, tiny_clip_dir)  # fixed: the next reload works
        assert admin.Reload(pb.ReloadRequest(), timeout=60).index_size == 5
        assert search.Info(pb.InfoRequest(), timeout=10).generation == 2
    assert cli.main(["reload", "--server", running.address]) == 0
    assert "generation 3" in capsys.readouterr().out
    assert cli.main(["info", "--server", running.address]) == 0
    assert capsys.readouterr().out.startswith("generation 3 (loaded 20")


@pytest.mark.slow  # starts an `evdsearch serve` process
def test_sighup_reloads_a_running_serve_process(tmp_path: Path, tiny_clip_dir: Path) -> None:
    index, kb = build_index(tmp_path, tiny_clip_dir), build_kb(tmp_path / "kb")
    proc = subprocess.Popen([sys.executable, "-m", "evdsearch", "serve", "--index", str(index), "--kb", str(kb),
                             "--port", "0", "--device", "cpu", "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "serving evdsearch.v1.SearchService on 127.0.0.1:" in first, first + proc.stderr.read()
        address = re.search(r"(127\.0\.0\.1:\d+)", first).group(1)
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[1].startswith(f"reload: kill -HUP {proc.pid} ")
        client = Searcher(address)
        client.start()
        rebuild(index, index.parent / "data" / "images", 9, tiny_clip_dir)
        proc.send_signal(signal.SIGHUP)
        reloaded = proc.stdout.readline()
        ok, failed = client.stop()
        assert "SIGHUP: reloaded" in reloaded and "generation 2 (9 images, 4 entities" in reloaded, reloaded
        with grpc.insecure_channel(address) as channel:
            info = search_pb2_grpc.SearchServiceStub(channel).Info(pb.InfoRequest(), timeout=10)
        assert (info.generation, info.index_size) == (2, 9)
        print(f"searches during rebuild + SIGHUP: {ok + len(failed)}, failed: {len(failed)}")
        assert failed == [] and ok > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_reload_keeps_the_query_embedding_cache_only_with_its_model(tmp_path: Path, tiny_clip_dir: Path) -> None:
    from evdsearch.engine.reload import EngineHolder, Reloader
    from evdsearch.engine.search import SearchEngine
    from evdsearch.search_api import SearchRequest

    index, kb = build_index(tmp_path, tiny_clip_dir), build_kb(tmp_path / "kb")
    holder = EngineHolder(open_engine(index, kb))
    first = holder.current.engine
    first.search(SearchRequest(text="a tomato next to a school bus", k=3, mode="original"))
    assert (first.encoder.stats().hits, first.encoder.stats().misses) == (0, 1)
    kb_import(kb, "zebra")  # a write, then the reload an operator sends after it
    second = Reloader(holder).reload().generation.engine
    assert second is not first and second.clip is first.clip and second.kb.path != first.kb.path
    second.search(SearchRequest(text="a tomato next to a school bus", k=3, mode="original"))
    assert second.encoder.stats().hits == 1  # warm after the reload: the text was not encoded again
    # a freshly loaded model (another object, as when the index was rebuilt with another CLIP) gets an empty cache
    third = SearchEngine.open(second.config, kb=second.kb, text_cache=second.encoder)
    assert third.clip is not second.clip and third.encoder is not second.encoder
    assert third.encoder.stats().size == 0
    second.close()
