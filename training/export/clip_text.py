"""Export a CLIP checkpoint's text tower to ONNX (tokens -> L2-normalised embedding) and run it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.atomic import write_json_atomic

TEXT_FILE = "clip_text.onnx"
META_FILE = "clip_text.json"
OPSET = 17


def export_clip_text(clip_model: str, out: str | Path, opset: int = OPSET) -> Path:
    """Write OUT/clip_text.onnx (input `tokens` int64 (B, context), output `embedding`) + clip_text.json."""
    import torch

    from evdsearch.clip_models import load_clip

    clip = load_clip(clip_model, device="cpu")

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


class OnnxClipText:
    """The exported text tower on onnxruntime, tokenised with the checkpoint's own open_clip tokenizer."""

    def __init__(self, folder: str | Path, device: str = "auto", threads: int = 0) -> None:
        import open_clip

        from engine.rewriters.onnx_seq2seq import make_session
        from evdsearch.clip_models import register_model_configs

        folder = Path(folder)
        self.meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        register_model_configs()
        model = self.meta["clip"]["model"]
        self.tokenizer = open_clip.get_tokenizer(f"local-dir:{model}" if Path(model).is_dir() else model)
        self.session = make_session(folder / TEXT_FILE, device, threads)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, as LoadedClip.encode_texts."""
        tokens = self.tokenizer(texts).numpy().astype(np.int64)
        return self.session.run(None, {"tokens": tokens})[0].astype(np.float32)
