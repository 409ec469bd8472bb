"""Export a CLIP checkpoint's text tower to ONNX (tokens -> L2-normalised embedding) and run it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from evdsearch.atomic import write_json_atomic
from evdsearch.engine.onnx_clip_text import (  # noqa: F401  (re-exported)
    META_FILE,
    TEXT_FILE,
    TEXT_INT8_FILE,
    OnnxClipText,
)

OPSET = 17


def _dynamic_attention(mha: Any) -> Any:
    """An export-only stand-in for a batch-first nn.MultiheadAttention with the same weights and math.

    torch's MHA bakes the traced sequence length into its reshapes, so an export of it only runs on the
    example's length; this one reshapes with -1, keeping the sequence axis dynamic.
    """
    import torch
    import torch.nn.functional as F

    class DynamicAttention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, q_x: Any, k_x: Any, v_x: Any, need_weights: bool = False, attn_mask: Any = None) -> Any:
            heads, width = self.mha.num_heads, self.mha.embed_dim
            qkv = F.linear(q_x, self.mha.in_proj_weight, self.mha.in_proj_bias)
            q, k, v = (part.reshape(q_x.shape[0], -1, heads, width // heads).transpose(1, 2)
                       for part in qkv.chunk(3, dim=-1))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
            out = out.transpose(1, 2).reshape(q_x.shape[0], -1, width)
            return self.mha.out_proj(out), None

    return DynamicAttention()


def _export_ready(model: Any) -> Any:
    """A copy of the CLIP whose text blocks use `_dynamic_attention` (self-attention, batch first, packed qkv)."""
    import copy

    model = copy.deepcopy(model)
    for block in model.transformer.resblocks:
        mha = block.attn
        if not (mha.batch_first and mha._qkv_same_embed_dim and not hasattr(block, "ln_1_kv")):
            raise ValueError("true-length export needs batch-first self-attention with packed qkv weights")
        block.attn = _dynamic_attention(mha)
    return model


def export_clip_text(clip_model: str, out: str | Path, opset: int = OPSET, pretrained: str | None = None,
                     true_length: bool | None = None, int8: bool = True) -> Path:
    """Write OUT/clip_text.onnx (input `tokens` int64 (B, L), output `embedding`) + clip_text.json.

    When true-length encoding is exact for the tower (`can_trim`), L is a dynamic axis (1..context) and
    the engine feeds each batch's longest real length; otherwise the graph takes the full context.
    `true_length=False` forces the full-context graph (what exports made before this option were).
    `int8` also writes clip_text.int8.onnx (int8 weights, dynamic activation quantisation) for
    `serve --text-encoder onnx-int8`.
    """
    import torch

    from evdsearch.clip_models import load_clip
    from evdsearch.true_length import encode_text_prefix

    clip = load_clip(clip_model, pretrained, device="cpu")
    trim = clip.trim if true_length is None else (clip.trim and true_length)

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = _export_ready(clip.model) if trim else clip.model

        def forward(self, tokens: Any) -> Any:
            if trim:  # positional embedding and causal mask sliced to the fed length
                return encode_text_prefix(self.model, tokens, normalize=True)
            return self.model.encode_text(tokens, normalize=True)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokens = clip.tokenizer(["a red square", "two small blue circles on a grey ground"])
    if trim:  # trace on a shorter-than-context length, so no stray 77 can hide in the graph
        tokens = tokens[:, : int(tokens.ne(0).sum(dim=1).max())]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings; the agreement test checks the graph
        torch.onnx.export(TextTower().eval(), (tokens,), str(out / TEXT_FILE), dynamo=False, opset_version=opset,
                          input_names=["tokens"], output_names=["embedding"],
                          dynamic_axes={"tokens": {0: "batch", 1: "length"} if trim else {0: "batch"},
                                        "embedding": {0: "batch"}})
    if int8:
        quantize_text_tower(out / TEXT_FILE, out / TEXT_INT8_FILE)
    write_json_atomic(out / META_FILE, {"clip": clip.identity.__dict__, "int8": int8,
                                        "context_length": int(clip.model.context_length),
                                        "dynamic_length": trim, "opset": opset})
    return out


def quantize_text_tower(source: Path, out: Path) -> Path:
    """int8 weights for the MatMul / Gemm layers (onnxruntime dynamic quantisation), written atomically."""
    import os

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_name(f".{out.name}.tmp")
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    os.replace(tmp, out)
    return out


def text_agreement(clip_model: str, folder: str | Path, pretrained: str | None = None,
                   texts: tuple[str, ...] = ("a tomato next to a school bus", "a small red circle left of a blue square",
                                             "a zebra", "two striped rectangles on a light gray background")) -> float:
    """Largest |torch - onnxruntime| over the embedding entries of a few texts (both L2-normalised)."""
    from evdsearch.clip_models import load_clip

    torch_vectors = load_clip(clip_model, pretrained, device="cpu").encode_texts(list(texts))
    onnx_vectors = OnnxClipText(folder, device="cpu").encode_texts(list(texts))
    return float(abs(torch_vectors - onnx_vectors).max())
