"""True-length text encoding gives the 77-token vectors: torch and onnxruntime, evd-tiny and ViT-B-32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

TEXTS = ["x", "a zebra", "a tomato next to a school bus", "a red square",
         "two striped rectangles on a light gray background, a small red circle left of a blue square, "
         "and a school bus behind a tomato on a wooden table"]


def full_length(clip) -> np.ndarray:  # noqa: ANN001
    """The reference: open_clip's own encode_text over the whole context."""
    with torch.inference_mode():
        return clip.model.encode_text(clip.tokenizer(TEXTS), normalize=True).float().numpy()


@pytest.mark.parametrize("name", ["evd-tiny", "ViT-B-32"])
def test_torch_true_length_matches_full_context(name: str) -> None:
    from evdsearch.clip_models import create_clip

    torch.manual_seed(0)
    clip = create_clip(name, device="cpu")
    assert clip.trim  # causal mask + argmax pooling: decided from the model
    got = clip.encode_texts(TEXTS)
    assert got.shape == (len(TEXTS), clip.embed_dim)
    assert np.abs(got - full_length(clip)).max() <= 1e-5
    assert np.abs(clip.encode_texts(TEXTS[::-1])[::-1] - got).max() <= 1e-5  # order does not matter


def test_training_uses_the_same_trimmed_encoder() -> None:
    from evdsearch.clip_models import create_clip
    from evdsearch.training.clip.text_encode import encode_text_trimmed

    clip = create_clip("evd-tiny", device="cpu")
    with torch.inference_mode():
        got = encode_text_trimmed(clip.model, clip.tokenizer(TEXTS)).numpy()
    assert np.abs(got - full_length(clip)).max() <= 1e-5


def test_a_tower_without_causal_mask_keeps_the_full_length() -> None:
    from evdsearch.clip_models import create_clip
    from evdsearch.true_length import can_trim

    clip = create_clip("evd-tiny", device="cpu")
    assert can_trim(clip.model)
    clip.model.text_pool_type = "first"  # pooling at the first token: later tokens matter
    assert not can_trim(clip.model)
    clip.model.text_pool_type = "argmax"
    clip.model.attn_mask = None  # bidirectional attention: padding would change the EOT feature
    assert not can_trim(clip.model)


def test_length_groups_keep_short_texts_apart_from_long_ones() -> None:
    from evdsearch.true_length import length_groups

    groups = length_groups(np.array([40, 5, 6, 7, 77, 41]))
    assert [g.tolist() for g in groups] == [[1, 2, 3], [0, 5], [4]]
    assert [len(g) for g in length_groups(np.full(10, 9), max_batch=4)] == [4, 4, 2]
    assert sorted(np.concatenate(length_groups(np.arange(100) % 77 + 1)).tolist()) == list(range(100))


def export_and_compare(clip_dir: Path, out: Path, **kwargs: object) -> tuple[object, float]:
    from evdsearch.clip_models import load_clip
    from evdsearch.training.export.clip_text import OnnxClipText, export_clip_text

    onnx = OnnxClipText(export_clip_text(str(clip_dir), out, int8=False, **kwargs), device="cpu")
    return onnx, float(np.abs(onnx.encode_texts(TEXTS) - full_length(load_clip(str(clip_dir), device="cpu"))).max())


def test_onnx_export_has_a_dynamic_length_axis(tiny_clip_dir: Path, tmp_path: Path) -> None:
    onnx, diff = export_and_compare(tiny_clip_dir, tmp_path / "onnx")
    assert onnx.dynamic_length and diff <= 1e-5
    assert json.loads((tmp_path / "onnx" / "clip_text.json").read_text())["dynamic_length"] is True
    feeds: list[tuple[int, int]] = []
    run = onnx.session.run
    onnx.session.run = lambda names, inputs: feeds.append(inputs["tokens"].shape) or run(names, inputs)
    onnx.encode_texts(["a zebra", "a red square"])
    assert feeds == [(2, 5)]  # the batch's true length (SOT a red square EOT), not 77


def test_an_old_full_context_export_still_works(tiny_clip_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "old"
    onnx, _ = export_and_compare(tiny_clip_dir, out, true_length=False)
    meta = json.loads((out / "clip_text.json").read_text())
    meta.pop("dynamic_length")  # what exports made before true-length encoding wrote
    (out / "clip_text.json").write_text(json.dumps(meta))
    from evdsearch.training.export.clip_text import OnnxClipText

    old = OnnxClipText(out, device="cpu")
    assert not old.dynamic_length
    assert np.abs(old.encode_texts(TEXTS) - onnx.encode_texts(TEXTS)).max() <= 1e-5


@pytest.mark.slow
def test_vit_b32_onnx_true_length_matches_full_context(tmp_path: Path) -> None:
    import open_clip

    from evdsearch.clip_models import create_clip, model_config, save_clip_checkpoint

    torch.manual_seed(0)
    clip = create_clip("ViT-B-32", device="cpu")
    folder = save_clip_checkpoint(clip.model, model_config("ViT-B-32"), open_clip.get_model_preprocess_cfg(clip.model),
                                  tmp_path / "vitb32")
    onnx, diff = export_and_compare(folder, tmp_path / "onnx")
    assert onnx.dynamic_length and diff <= 1e-5


def test_int8_text_tower_is_close_and_refused_without_cpu_support(tiny_clip_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import evdsearch.engine.onnx_clip_text as onnx_clip_text
    from evdsearch.clip_models import load_clip
    from evdsearch.errors import IncompatibleArtifact
    from evdsearch.training.export.clip_text import export_clip_text

    clip_dir = Path(shutil.copytree(tiny_clip_dir, tmp_path / "clip"))
    export_clip_text(str(clip_dir), clip_dir / "onnx")
    assert (clip_dir / "onnx" / "clip_text.int8.onnx").is_file()
    clip = load_clip(str(clip_dir), device="cpu")
    monkeypatch.setattr(onnx_clip_text, "cpu_runs_int8_fast", lambda: True)
    int8 = onnx_clip_text.with_text_encoder(clip, "onnx-int8", device="cpu")
    assert int8.text_precision == "int8" and onnx_clip_text.with_text_encoder(clip, "onnx").text_precision == "fp32"
    from types import SimpleNamespace

    from evdsearch.engine.cli.serve import _text_encoder_name  # what `serve` prints at startup

    assert _text_encoder_name(SimpleNamespace(clip=int8)) == "onnxruntime int8"
    assert _text_encoder_name(SimpleNamespace(clip=clip)) == "torch"
    cosine = (int8.encode_texts(TEXTS) * full_length(clip)).sum(axis=1)
    assert cosine.min() > 0.99
    monkeypatch.setattr(onnx_clip_text, "cpu_runs_int8_fast", lambda: False)
    with pytest.raises(IncompatibleArtifact, match="VNNI|avx512_vnni"):
        onnx_clip_text.with_text_encoder(clip, "onnx-int8", device="cpu")
