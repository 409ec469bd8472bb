"""Index building and the index store: round trips (Flat, IVF), skipped files, atomicity, model checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evdsearch.clip_models import ClipIdentity, LoadedClip, load_clip
from evdsearch.errors import IncompatibleArtifact, InvalidInput, NotFound, UserError
from evdsearch.indexer import embed
from evdsearch.indexer.build import IndexBuildConfig, build_index
from evdsearch.indexer.store import IndexStore
from evdsearch.versioned import current_version, version_ids


@pytest.fixture(scope="module")
def clip(tiny_clip_dir: Path) -> LoadedClip:
    return load_clip(str(tiny_clip_dir), device="cpu")


def write_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n small PNGs with distinct random content."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def config(source: Path, out: Path, clip: LoadedClip, **kw) -> IndexBuildConfig:
    return IndexBuildConfig(source=source, out=out, model=clip.identity.model, device="cpu", batch_size=8,
                            workers=2, progress=False, **kw)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """The current version's files, and which version that is."""
    version = current_version(folder)
    return {"version": str(version).encode(), **{p.name: p.read_bytes() for p in sorted(version.iterdir())}}


def assert_exact_top_k(store: IndexStore, k: int) -> None:
    """Index scores equal the brute-force top-k over the stored embeddings."""
    queries = np.asarray(store.embeddings[:5])
    scores, ids = store.search(queries, k)
    brute = np.sort(queries @ np.asarray(store.embeddings).T, axis=1)[:, ::-1][:, :k]
    assert ids.shape == (5, k) and (ids >= 0).all()
    np.testing.assert_allclose(scores, brute, atol=1e-5)
    for row in range(5):  # each reported score is the true inner product of that id
        np.testing.assert_allclose(scores[row], store.embeddings[ids[row]] @ queries[row], atol=1e-5)


def test_flat_round_trip(tmp_path: Path, clip: LoadedClip) -> None:
    paths = write_images(tmp_path / "images", 12)
    report = build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    assert report.count == 12 and report.skipped == []
    assert sorted(p.name for p in current_version(tmp_path / "index").iterdir()) == [
        "SHA256SUMS", "embeddings.npy", "index.faiss", "items.jsonl", "manifest.json"]
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == [  # links to current/NAME beside it
        ".lock", "current", "embeddings.npy", "index.faiss", "items.jsonl", "manifest.json", "versions"]
    store = IndexStore.open(tmp_path / "index", verify=True)
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert store.manifest.to_json() == manifest
    assert manifest["format_version"] == 1 and manifest["metric"] == "inner_product"
    assert manifest["fingerprint"] == clip.identity.fingerprint and manifest["dim"] == clip.embed_dim
    assert manifest["count"] == 12 and manifest["factory"] == "Flat"
    assert set(manifest["checksums"]) == {"index.faiss", "embeddings.npy", "items.jsonl"}
    assert manifest["source"]["type"] == "folder"
    assert store.embeddings.dtype == np.float32 and store.embeddings.shape == (12, clip.embed_dim)
    assert isinstance(store.embeddings, np.memmap)
    np.testing.assert_allclose(np.linalg.norm(store.embeddings, axis=1), 1.0, atol=1e-5)
    # Rows are the images in sorted order, embedded as the engine would embed them.
    expected = clip.encode_pil_images([Image.open(p) for p in paths])
    np.testing.assert_allclose(store.embeddings, expected, atol=1e-4)
    assert store.item(3) == {"id": 3, "uri": str(paths[3].resolve()), "captions": []}
    assert_exact_top_k(store, 4)
    scores, ids = store.search(np.asarray(store.embeddings[:2]), 50)  # k > count: clamped to count
    assert ids.shape == (2, 12)
    with pytest.raises(NotFound):
        store.item(12)
    with pytest.raises(InvalidInput):
        store.search(np.zeros((1, 3), np.float32), 1)


def test_ivf_round_trip(tmp_path: Path, clip: LoadedClip) -> None:
    write_images(tmp_path / "images", 64)
    build_index(config(tmp_path / "images", tmp_path / "index", clip, factory="IVF4,Flat"), clip=clip)
    store = IndexStore.open(tmp_path / "index")
    assert type(store.index).__name__ == "IndexIVFFlat" and store.index.nprobe == 4  # nprobe capped at nlist
    assert store.manifest.factory == "IVF4,Flat"
    assert_exact_top_k(store, 10)


def test_too_many_ivf_lists_fails_before_embedding(tmp_path: Path, clip: LoadedClip,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_images(tmp_path / "images", 12)
    monkeypatch.setattr(embed, "encode_batch", lambda *a: pytest.fail("embedded before refusing"))
    with pytest.raises(InvalidInput, match="only 12 images.*'Flat'"):
        build_index(config(tmp_path / "images", tmp_path / "index", clip, factory="IVF1024,Flat"), clip=clip)
    with pytest.raises(InvalidInput, match="cannot build index 'NoSuchIndex'"):
        build_index(config(tmp_path / "images", tmp_path / "index", clip, factory="NoSuchIndex"), clip=clip)
    assert not (tmp_path / "index").exists()


def test_unreadable_images_are_skipped_and_listed(tmp_path: Path, clip: LoadedClip) -> None:
    write_images(tmp_path / "images", 6)
    (tmp_path / "images" / "garbage.jpg").write_bytes(b"this is not a jpeg")
    good = (tmp_path / "images" / "000.png").read_bytes()
    (tmp_path / "images" / "truncated.png").write_bytes(good[: len(good) // 2])
    report = build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    assert (report.count, report.candidates) == (6, 8)
    manifest = IndexStore.open(tmp_path / "index").manifest
    skipped = {Path(s["path"]).name: s["reason"] for s in manifest.skipped}
    assert set(skipped) == {"garbage.jpg", "truncated.png"} and all(skipped.values())
    uris = [json.loads(line)["uri"] for line in (tmp_path / "index" / "items.jsonl").read_text().splitlines()]
    assert len(uris) == 6 and not any("garbage" in u or "truncated" in u for u in uris)


def test_no_readable_image_is_a_user_error(tmp_path: Path, clip: LoadedClip) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"nope")
    with pytest.raises(InvalidInput, match="none of the 1 images could be read"):
        build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    assert not (tmp_path / "index").exists()


def test_interrupted_build_leaves_previous_index(tmp_path: Path, clip: LoadedClip,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_images(tmp_path / "images", 24)
    build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    before = folder_bytes(tmp_path / "index")
    calls = []
    real_encode = embed.encode_batch

    def encode_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 2:  # mid-way: one batch done, two to go
            raise KeyboardInterrupt
        return real_encode(*args)

    monkeypatch.setattr(embed, "encode_batch", encode_then_interrupt)
    write_images(tmp_path / "images", 30, seed=1)  # a different collection this time
    with pytest.raises(KeyboardInterrupt):
        build_index(config(tmp_path / "images", tmp_path / "index", clip, force=True), clip=clip)
    assert len(calls) == 2
    assert folder_bytes(tmp_path / "index") == before
    # No temp index folder left; the finished shards stay staged for `--resume`.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.staging", "images", "index"]
    assert version_ids(tmp_path / "index") == ["v000001"]
    assert sorted(p.name for p in (tmp_path / "index" / "versions").iterdir()) == ["v000001"]


def test_existing_index_needs_force(tmp_path: Path, clip: LoadedClip) -> None:
    write_images(tmp_path / "images", 4)
    build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    with pytest.raises(UserError, match="--force"):
        build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    write_images(tmp_path / "images", 7)
    assert build_index(config(tmp_path / "images", tmp_path / "index", clip, force=True), clip=clip).count == 7
    assert IndexStore.open(tmp_path / "index").count == 7
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(UserError, match="not an evdsearch index"):  # --force never wipes a foreign folder
        build_index(config(tmp_path / "images", tmp_path / "notes", clip, force=True), clip=clip)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_store_refuses_another_model(tmp_path: Path, clip: LoadedClip) -> None:
    write_images(tmp_path / "images", 4)
    build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    store = IndexStore.open(tmp_path / "index")
    store.check_model(clip.identity)
    other = ClipIdentity("ViT-B-32", "openai", "ViT-B-32:openai", clip.embed_dim)
    with pytest.raises(IncompatibleArtifact, match="built with model .* but the engine loaded ViT-B-32.*re-index"):
        store.check_model(other)


def test_store_open_errors(tmp_path: Path, clip: LoadedClip) -> None:
    with pytest.raises(NotFound, match="no index at"):
        IndexStore.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="no manifest.json"):
        IndexStore.open(tmp_path / "empty")
    write_images(tmp_path / "images", 4)
    build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    with open(tmp_path / "index" / "items.jsonl", "a") as handle:
        handle.write('{"id": 4, "uri": "x", "captions": []}\n')
    with pytest.raises(IncompatibleArtifact, match="items.jsonl is damaged"):
        IndexStore.open(tmp_path / "index", verify=True)
    with pytest.raises(IncompatibleArtifact, match="items holds"):
        IndexStore.open(tmp_path / "index")
    (current_version(tmp_path / "index") / "embeddings.npy").unlink()
    with pytest.raises(IncompatibleArtifact, match="embeddings.npy is missing"):
        IndexStore.open(tmp_path / "index")


def test_karpathy_source_carries_captions(tmp_path: Path, clip: LoadedClip) -> None:
    write_images(tmp_path / "images" / "all", 4)
    images = [
        {"filename": f"{i:03d}.png", "filepath": "images/all", "split": "test" if i < 3 else "train",
         "sentences": [{"raw": f"picture number {i}"}, {"raw": f"another caption {i}"}]}
        for i in range(4)
    ]
    images.append({"filename": "gone.png", "filepath": "images/all", "split": "test",
                   "sentences": [{"raw": "a missing file"}]})
    (tmp_path / "data.json").write_text(json.dumps({"dataset": "toy", "images": images}))
    report = build_index(config(tmp_path / "data.json", tmp_path / "index", clip, split="test"), clip=clip)
    assert report.count == 3 and [Path(s["path"]).name for s in report.skipped] == ["gone.png"]
    store = IndexStore.open(tmp_path / "index")
    assert store.item(1)["captions"] == ["picture number 1", "another caption 1"]
    assert store.item(2)["uri"] == str((tmp_path / "images" / "all" / "002.png").resolve())
    assert store.manifest.source == {
        "type": "karpathy", "path": str((tmp_path / "data.json").resolve()), "dataset": "toy", "split": "test",
        "images_root": str(tmp_path.resolve())}
    with pytest.raises(InvalidInput, match="split 'val' has no images"):
        build_index(config(tmp_path / "data.json", tmp_path / "other", clip, split="val"), clip=clip)


def test_verify_command(tmp_path: Path, clip: LoadedClip, capsys: pytest.CaptureFixture[str]) -> None:
    from evdsearch import cli

    write_images(tmp_path / "images", 5)
    build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip)
    assert cli.main(["verify", str(tmp_path / "index")]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("ok: index") and "5 images" in out and "checksums match" in out and "\n" not in out
    with open(current_version(tmp_path / "index") / "items.jsonl", "a") as handle:
        handle.write('{"id": 5, "uri": "x", "captions": []}\n')
    assert cli.main(["verify", str(tmp_path / "index")]) == 1
    err = capsys.readouterr().err
    assert "FAILED: index" in err and "items.jsonl is damaged" in err


def test_old_layout_index_opens_and_the_next_build_converts_it(tmp_path: Path, clip: LoadedClip) -> None:
    import shutil

    write_images(tmp_path / "images", 4)
    build_index(config(tmp_path / "images", tmp_path / "built", clip), clip=clip)
    old = tmp_path / "old"  # what the previous release wrote: the files directly in the folder
    shutil.copytree(current_version(tmp_path / "built"), old)
    assert IndexStore.open(old, verify=True).count == 4
    write_images(tmp_path / "images", 6)
    build_index(config(tmp_path / "images", old, clip, force=True), clip=clip)
    assert (old / "manifest.json").is_symlink() and version_ids(old) == ["v000001"]
    assert IndexStore.open(old, verify=True).count == 6
