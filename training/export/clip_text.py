"""Export a CLIP checkpoint's text tower to ONNX (tokens -> L2-normalised embedding) and run it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from evdsearch.atomic import write_json_atomic
from evdsearch.engine.onnx_clip_text import META_FILE, TEXT_FILE, OnnxClipText  # noqa: F401  (re-exported)

OPSET = 17


def export_clip_text(clip_model: str, out: str | Path, opset: int = OPSET, pretrained: str | None = None) -> Path:
    """Write OUT/clip_text.onnx (input `tokens` int64 (B, context), output `embedding`) + clip_text.json."""
    import torch

    from evdsearch.clip_models import load_clip

    clip = load_clip(clip_model, pretrained, device="cpu")

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = clip.model

        def forward(self, tokens: Any) -> Any:
            return self.model.encode_text(tokens, normalize=True)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokens = clip.tokenizer(["a red square", "two small blue circles on a grey ground"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings; the agreement test checks the graph
        torch.onnx.export(TextTower().eval(), (tokens,), str(out / TEXT_FILE), dynamo=False, opset_version=opset,
                          input_names=["tokens"], output_names=["embedding"],
                          dynamic_axes={"tokens": {0: "batch"}, "embedding": {0: "batch"}})
    write_json_atomic(out / META_FILE, {"clip": clip.identity.__dict__, "context_length": int(tokens.shape[1]),
                                        "opset": opset})
    return out


def text_agreement(clip_model: str, folder: str | Path, pretrained: str | None = None,
                   texts: tuple[str, ...] = ("a tomato next to a school bus", "a small red circle left of a blue square",
                                             "a zebra", "two striped rectangles on a light gray background")) -> float:
    """Largest |torch - onnxruntime| over the embedding entries of a few texts (both L2-normalised)."""
    from evdsearch.clip_models import load_clip

    torch_vectors = load_clip(clip_model, pretrained, device="cpu").encode_texts(list(texts))
    onnx_vectors = OnnxClipText(folder, device="cpu").encode_texts(list(texts))
    return float(abs(torch_vectors - onnx_vectors).max())
