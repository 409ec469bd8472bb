"""Versioned folders: publish/swap, rollback copy kept, leftovers swept, old layout read and converted; KB imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evdsearch import cli
from evdsearch.errors import UserError
from evdsearch.indexer.kb import KnowledgeBase
from evdsearch.indexer.kb_publish import import_new_version
from evdsearch.versioned import (
    WriterBusy,
    current_version,
    is_versioned,
    publish_version,
    version_ids,
)


def publish(directory: Path, text: str, **kw) -> Path:
    with publish_version(directory, compat_files=("data.txt",), **kw) as staging:
        (staging / "data.txt").write_text(text)
    return current_version(directory)


def test_publish_swaps_current_and_keeps_the_previous_version(tmp_path: Path) -> None:
    d = tmp_path / "store"
    first = publish(d, "one")
    assert is_versioned(d) and first == (d / "versions" / "v000001").resolve()
    assert (d / "data.txt").read_text() == "one" and os.readlink(d / "data.txt") == "current/data.txt"
    second = publish(d, "two")
    assert (second / "data.txt").read_text() == "two" and (first / "data.txt").read_text() == "one"
    publish(d, "three")
    assert version_ids(d) == ["v000002", "v000003"]  # current + previous (rollback); older swept
    assert (d / "data.txt").read_text() == "three"


def test_force_false_refuses_an_existing_folder(tmp_path: Path) -> None:
    publish(tmp_path / "s", "one")
    with pytest.raises(UserError, match="--force"):
        publish(tmp_path / "s", "two", force=False)
    assert (tmp_path / "s" / "data.txt").read_text() == "one"


def test_error_inside_leaves_the_old_version_and_a_failed_first_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), publish_version(tmp_path / "new"):
        raise RuntimeError("boom")
    assert not (tmp_path / "new").exists()
    publish(tmp_path / "s", "one")
    with pytest.raises(RuntimeError), publish_version(tmp_path / "s") as staging:
        (staging / "data.txt").write_text("half")
        raise RuntimeError("boom")
    assert (tmp_path / "s" / "data.txt").read_text() == "one" and version_ids(tmp_path / "s") == ["v000001"]
    assert os.listdir(tmp_path / "s" / "versions") == ["v000001"]


def test_leftovers_of_a_killed_writer_are_swept(tmp_path: Path) -> None:
    d = tmp_path / "s"
    publish(d, "one")
    (d / "versions" / "v000002.partial").mkdir()  # what a kill -9 mid-build leaves
    (d / "versions" / "v000002.partial" / "data.txt").write_text("half")
    os.symlink("versions/v000002", d / ".current.123.tmp")
    publish(d, "two")
    assert sorted(os.listdir(d / "versions")) == ["v000001", "v000002"]
    assert not (d / ".current.123.tmp").exists() and (d / "data.txt").read_text() == "two"


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    d = tmp_path / "s"
    with publish_version(d) as staging, pytest.raises(WriterBusy, match="another evdsearch process"):
        (staging / "data.txt").write_text("x")
        with publish_version(d):
            pass


def test_old_layout_is_read_as_it_is_and_converted_by_the_next_write(tmp_path: Path) -> None:
    d = tmp_path / "s"
    d.mkdir()
    (d / "data.txt").write_text("old")
    assert current_version(d) == d and not is_versioned(d)
    publish(d, "new")
    assert is_versioned(d) and (d / "data.txt").is_symlink() and (d / "data.txt").read_text() == "new"


def kb_import_subprocess(tmp_path: Path, kb_dir: Path, entity: str) -> str:
    """`evdsearch kb import` in its own process, as beside a running server (LMDB: one env per path and process)."""
    src = tmp_path / f"{entity}.jsonl"
    src.write_text(json.dumps({"entity": entity, "description": "d", "source": "s", "score": 1.0}) + "\n")
    done = subprocess.run([sys.executable, "-m", "evdsearch", "kb", "import", str(src), "--kb", str(kb_dir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kb_import_writes_a_new_version_a_reader_never_sees_change(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    with KnowledgeBase.open(kb_dir, readonly=False) as old:  # the previous release's layout: data.mdb in kb/
        old.import_records([{"entity": "tomato", "description": "red", "source": "s", "score": 1.0}])
    reader = KnowledgeBase.open(kb_dir)  # a server's handle (lock=False) on the old layout
    assert "it now holds 2 entities" in kb_import_subprocess(tmp_path, kb_dir, "bus")
    assert reader.entities() == ["tomato"]  # its pages were never written
    reader.close()
    reader = KnowledgeBase.open(kb_dir)  # a reload reads the new version
    assert reader.entities() == ["bus", "tomato"] and reader.path == current_version(kb_dir)
    kb_import_subprocess(tmp_path, kb_dir, "cat")
    assert reader.entities() == ["bus", "tomato"]
    reader.close()
    with KnowledgeBase.open(kb_dir) as now:
        assert now.entities() == ["bus", "cat", "tomato"]
    assert (kb_dir / "data.mdb").is_symlink() and version_ids(kb_dir) == ["v000001", "v000002"]


def test_verify_kb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb_dir = tmp_path / "kb"
    import_new_version(kb_dir, [{"entity": "tomato", "description": "red", "source": "s", "score": 1.0}])
    assert cli.main(["verify", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: knowledge base") and "1 entities, 1 descriptions" in out and "v000001" in out
    with KnowledgeBase.open(current_version(kb_dir), readonly=False) as kb:  # damage one record in place
        with kb._env.begin(write=True) as txn:
            txn.put(b"tomato", b"{not json", db=kb._entities)
    assert cli.main(["verify", str(kb_dir)]) == 1
    assert "FAILED: knowledge base" in capsys.readouterr().err  # its SHA256SUMS no longer match
    (current_version(kb_dir) / "SHA256SUMS").unlink()  # as a KB written before checksums: the records are parsed
    assert cli.main(["verify", str(kb_dir)]) == 1
    assert "FAILED: knowledge base" in (err := capsys.readouterr().err) and "not valid JSON" in err
    assert cli.main(["verify", str(tmp_path / "nothing")]) == 1
    (tmp_path / "empty").mkdir()
    assert cli.main(["verify", str(tmp_path / "empty")]) == 1
    assert "neither an index" in capsys.readouterr().err
