"""Damaged files: every index and KB file kind bit-flipped or cut short at seeded random offsets is detected by
`verify` and refused at load; a server asked to reload a damaged version keeps serving; `verify --repair`."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from test_engine_support import KB_RECORDS, build_index, open_engine

from evdsearch import cli
from evdsearch.engine.api import EngineConfig
from evdsearch.engine.grpc_server.server import build_server
from evdsearch.engine.loading import open_kb
from evdsearch.errors import IncompatibleArtifact
from evdsearch.indexer.kb_publish import import_new_version
from evdsearch.indexer.store import IndexStore
from evdsearch.indexer.verify import VerifyFailed, verify_path
from evdsearch.integrity import SUMS_FILE, check_sums
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc
from evdsearch.versioned import current_version, publish_version, version_ids

SEED = 24
INDEX_FILES = ("index.faiss", "embeddings.npy", "items.jsonl", "manifest.json", SUMS_FILE)
KB_FILES = ("data.mdb", SUMS_FILE)


def damage(path: Path, rng: random.Random) -> str:
    """Flip one random bit, or cut the file short at a random length; says which."""
    data = bytearray(path.read_bytes())
    if rng.random() < 0.5:
        offset, bit = rng.randrange(len(data)), rng.randrange(8)
        data[offset] ^= 1 << bit
        path.write_bytes(bytes(data))
        return f"bit {bit} of byte {offset:,} flipped"
    cut = rng.randrange(len(data))
    os.truncate(path, cut)
    return f"cut from {len(data):,} to {cut:,} bytes"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("integrity")
    index = build_index(root, tiny_clip_dir)
    kb = root / "kb-versioned"
    import_new_version(kb, KB_RECORDS)
    return index, kb


def damage_cases(stores: tuple[Path, Path], work: Path, cases: int) -> list[tuple[str, str, str]]:
    """(file, damage, what was refused) for each case; a case that was not refused fails the test."""
    rng = random.Random(SEED)
    index, kb = stores
    kinds = [("index", name) for name in INDEX_FILES] + [("kb", name) for name in KB_FILES]
    rows = []
    for case in range(cases):
        store, name = kinds[case % len(kinds)]  # every file kind, in turn
        folder = work / f"case{case}"
        shutil.copytree(index if store == "index" else kb, folder, symlinks=True)
        how = damage(current_version(folder) / name, rng)
        with pytest.raises(VerifyFailed):
            verify_path(folder)
        with pytest.raises(IncompatibleArtifact):  # what serve (and a reload) call to load it
            if store == "index":
                IndexStore.open(folder, verify=True)
            else:
                open_kb(EngineConfig(index_dir="unused", kb_dir=str(folder))).close()
        rows.append((f"{store}/{name}", how, "verify + load"))
        shutil.rmtree(folder)
    return rows


def test_every_damaged_file_kind_is_detected_and_refused(stores: tuple[Path, Path], tmp_path: Path) -> None:
    for store in stores:
        assert check_sums(current_version(store)) is not None and verify_path(store)
    rows = damage_cases(stores, tmp_path, cases=int(os.environ.get("EVDSEARCH_DAMAGE_CASES", "56")))
    kinds = {row[0] for row in rows}
    print(f"damaged files detected by verify and refused at load: {len(rows)} / {len(rows)} "
          f"({len(kinds)} file kinds: {', '.join(sorted(kinds))})")
    assert len(rows) >= 50 and len(kinds) == len(INDEX_FILES) + len(KB_FILES)


def test_the_message_names_the_file(stores: tuple[Path, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "index"
    shutil.copytree(stores[0], folder, symlinks=True)
    (current_version(folder) / "embeddings.npy").write_bytes(b"\x93NUMPY")  # cut short
    assert cli.main(["verify", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FAILED: index" in err and "embeddings.npy is damaged (6 bytes" in err


def test_folders_without_checksums_still_open(stores: tuple[Path, Path], tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    index, kb = tmp_path / "index", tmp_path / "kb"
    shutil.copytree(stores[0], index, symlinks=True)
    shutil.copytree(stores[1], kb, symlinks=True)
    for folder in (index, kb):
        (current_version(folder) / SUMS_FILE).unlink()  # as written by a release before SHA256SUMS
        assert "no SHA256SUMS" in verify_path(folder).summary
    assert IndexStore.open(index, verify=True).count == 12  # the manifest's own checksums are still checked
    with open(current_version(index) / "items.jsonl", "a") as handle:
        handle.write("\n")
    with pytest.raises(IncompatibleArtifact, match="items.jsonl changed since the build"):
        IndexStore.open(index, verify=True)
    open_kb(EngineConfig(index_dir="unused", kb_dir=str(kb))).close()
    assert "has no SHA256SUMS" in caplog.text


def test_repair_rolls_back_to_the_newest_version_that_verifies(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    kb = tmp_path / "kb"
    for i in range(3):  # v1, v2, v3 (publish keeps the current one and the one before it)
        import_new_version(kb, [{"entity": f"e{i}", "description": "d", "source": "s", "score": 1.0}])
    assert version_ids(kb) == ["v000002", "v000003"]
    assert cli.main(["verify", str(kb), "--repair"]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    damage(current_version(kb) / "data.mdb", random.Random(1))
    assert cli.main(["verify", str(kb), "--repair"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"repaired: {kb}/current now points to v000002") and "v000003: knowledge base" in out
    assert current_version(kb).name == "v000002" and (kb / "versions" / "v000003.damaged").is_dir()
    assert cli.main(["verify", str(kb)]) == 0
    import_new_version(kb, [{"entity": "e9", "description": "d", "source": "s", "score": 1.0}])
    assert sorted(os.listdir(kb / "versions")) == ["v000002", "v000004"]  # damaged swept, its id not reused
    damage(current_version(kb) / SUMS_FILE, random.Random(2))
    damage(kb / "versions" / "v000002" / "data.mdb", random.Random(3))
    assert cli.main(["verify", str(kb), "--repair"]) == 1
    assert "no version of" in capsys.readouterr().err


class Searcher(threading.Thread):
    """Searches back to back until stopped; counts answers and failures."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address, self.done, self.ok, self.failed = address, threading.Event(), 0, []

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            while not self.done.is_set():
                try:
                    stub.Search(pb.SearchRequest(text="a tomato next to a school bus", k=3), timeout=30)
                    self.ok += 1
                except grpc.RpcError as err:
                    self.failed.append(f"{err.code()}: {err.details()}")

    def stop(self) -> tuple[int, list[str]]:
        self.done.set()
        self.join(60)
        return self.ok, self.failed


def test_reload_of_a_damaged_version_keeps_serving(tmp_path: Path, tiny_clip_dir: Path) -> None:
    index, kb = build_index(tmp_path, tiny_clip_dir), tmp_path / "kb"
    import_new_version(kb, KB_RECORDS)
    rng = random.Random(SEED)
    with open_engine(index, kb) as engine:
        running = build_server(engine, port=0, max_workers=4)
        running.start()
        client = Searcher(running.address)
        client.start()
        try:
            with grpc.insecure_channel(running.address) as channel:
                admin = search_pb2_grpc.AdminServiceStub(channel)
                refused = []
                for store, name in [("index", n) for n in INDEX_FILES] + [("kb", n) for n in KB_FILES]:
                    folder = index if store == "index" else kb
                    good = current_version(folder)
                    with publish_version(folder) as staging:  # a new version: a copy of the good one
                        for path in good.iterdir():
                            if path.name != SUMS_FILE:
                                shutil.copy(path, staging / path.name)
                    damage(current_version(folder) / name, rng)
                    with pytest.raises(grpc.RpcError) as err:
                        admin.Reload(pb.ReloadRequest(), timeout=120)
                    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                    assert "reload failed, still serving generation 1" in err.value.details()
                    refused.append(err.value.details())
                    repair = ["verify", str(folder), "--repair"]  # back to the good version
                    if store == "kb":  # as an operator would: LMDB opens a folder once per process
                        done = subprocess.run([sys.executable, "-m", "evdsearch", *repair], capture_output=True)
                        assert done.returncode == 0, done.stderr
                    else:
                        assert cli.main(repair) == 0
                    assert current_version(folder) == good
                assert all(any(w in r for w in ("is damaged", "not listed", "missing")) for r in refused), refused
                answer = admin.Reload(pb.ReloadRequest(), timeout=120)
                assert answer.generation == 2 and answer.index_size == 12
        finally:
            ok, failed = client.stop()
            running.stop(0)
    print(f"reloads of damaged versions refused: {len(refused)} / {len(refused)}; searches meanwhile: "
          f"{ok + len(failed)}, failed: {len(failed)}")
    assert failed == [] and ok > 0 and len(refused) == len(INDEX_FILES) + len(KB_FILES)
