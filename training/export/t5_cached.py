"""A T5 decoder with explicit key/value tensors, built from a transformers T5 for ONNX export.

Two graphs replace the decoder that re-reads every earlier token each step (O(T²) per rewrite):
`CrossKV` runs the encoder once and projects its output into every decoder layer's cross-attention keys
and values; `DecoderWithPast` takes the next n tokens, the self-attention keys/values of the tokens
before them and the cross keys/values, and returns the n tokens' logits and the grown self keys/values.
n = 1 is greedy decoding; n > 1 verifies a draft in one call (speculative decoding). Same arithmetic
as transformers' eager T5 (relative position bias of layer 0 shared by every layer, no score scaling,
RMS layer norm, scaled tied head), so the greedy tokens are the same.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _rms_norm(norm: Any, x: torch.Tensor) -> torch.Tensor:
    """T5LayerNorm: scale only, variance in float32."""
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return norm.weight * (x * torch.rsqrt(variance + norm.variance_epsilon))


def _heads(x: torch.Tensor, n_heads: int, d_kv: int) -> torch.Tensor:
    """(B, T, H*d) -> (B, H, T, d)."""
    return x.view(x.shape[0], x.shape[1], n_heads, d_kv).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ + bias) v, merged back to (B, T, H*d)."""
    weights = torch.softmax(torch.matmul(q, k.transpose(2, 3)) + bias, dim=-1)
    out = torch.matmul(weights, v).transpose(1, 2)
    return out.reshape(out.shape[0], out.shape[1], -1)


class CrossKV(nn.Module):
    """(input_ids, attention_mask) -> cross keys and values of every decoder layer, (L, B, H, S, d) each."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.encoder = model.get_encoder()
        self.layers = nn.ModuleList(block.layer[1].EncDecAttention for block in model.get_decoder().block)
        self.n_heads, self.d_kv = model.config.num_heads, model.config.d_kv

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        keys = torch.stack([_heads(a.k(hidden), self.n_heads, self.d_kv) for a in self.layers])
        values = torch.stack([_heads(a.v(hidden), self.n_heads, self.d_kv) for a in self.layers])
        return keys, values


class DecoderWithPast(nn.Module):
    """Logits of n new tokens given the keys/values of the t tokens before them (t may be 0)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        cfg = model.config
        decoder = model.get_decoder()
        self.embed = decoder.embed_tokens
        self.blocks = decoder.block
        self.final_norm = decoder.final_layer_norm
        self.lm_head = model.lm_head
        self.bias = decoder.block[0].layer[0].SelfAttention  # owns the relative position bias
        self.n_heads, self.d_kv = cfg.num_heads, cfg.d_kv
        self.scale = cfg.d_model ** -0.5 if getattr(cfg, "scale_decoder_outputs", cfg.tie_word_embeddings) else 1.0
        self.mask_value = torch.finfo(torch.float32).min

    def position_bias(self, past: int | torch.Tensor, n: int | torch.Tensor) -> torch.Tensor:
        """(1, H, n, t+n): layer 0's relative position bias plus the causal mask among the new tokens."""
        query = torch.arange(n)[:, None] + past
        key = torch.arange(past + n)[None, :]
        relative = key - query
        attn = self.bias
        buckets = attn._relative_position_bucket(relative, bidirectional=False,
                                                  num_buckets=attn.relative_attention_num_buckets,
                                                  max_distance=attn.relative_attention_max_distance)
        bias = attn.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)
        causal = torch.where(relative > 0, self.mask_value, 0.0).to(bias.dtype)
        return bias + causal

    def forward(self, input_ids: torch.Tensor, encoder_attention_mask: torch.Tensor, past_keys: torch.Tensor,
                past_values: torch.Tensor, cross_keys: torch.Tensor, cross_values: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.embed(input_ids)
        bias = self.position_bias(past_keys.shape[3], input_ids.shape[1])
        cross_mask = (1.0 - encoder_attention_mask[:, None, None, :].to(hidden.dtype)) * self.mask_value
        keys_out, values_out = [], []
        for i, block in enumerate(self.blocks):
            attn = block.layer[0].SelfAttention
            normed = _rms_norm(block.layer[0].layer_norm, hidden)
            keys = torch.cat([past_keys[i], _heads(attn.k(normed), self.n_heads, self.d_kv)], dim=2)
            values = torch.cat([past_values[i], _heads(attn.v(normed), self.n_heads, self.d_kv)], dim=2)
            keys_out.append(keys)
            values_out.append(values)
            hidden = hidden + attn.o(_attend(_heads(attn.q(normed), self.n_heads, self.d_kv), keys, values, bias))
            cross = block.layer[1].EncDecAttention
            normed = _rms_norm(block.layer[1].layer_norm, hidden)
            hidden = hidden + cross.o(_attend(_heads(cross.q(normed), self.n_heads, self.d_kv), cross_keys[i],
                                              cross_values[i], cross_mask))
            ff = block.layer[-1]
            hidden = hidden + ff.DenseReluDense(_rms_norm(ff.layer_norm, hidden))
        hidden = _rms_norm(self.final_norm, hidden) * self.scale
        return self.lm_head(hidden), torch.stack(keys_out), torch.stack(values_out)


def export_cached(model: Any, out: Any, opset: int) -> dict[str, int]:
    """Write the cross-KV and decoder-with-past graphs into folder `out`; returns their shape record."""
    import warnings

    from evdsearch.artifacts import REWRITER_CROSS_KV_FILE, REWRITER_DECODER_PAST_FILE

    cfg = model.config
    cross, decoder = CrossKV(model).eval(), DecoderWithPast(model).eval()
    ids = torch.tensor([[5, 6, 7, 1], [5, 6, 1, 0]])
    mask = (ids != cfg.pad_token_id).long()
    mask[:, 0] = 1
    layers = cfg.num_decoder_layers
    past = torch.zeros(layers, 2, cfg.num_heads, 3, cfg.d_kv)
    step = torch.tensor([[5, 6], [7, 8]])
    kv_axes = {0: "layers", 1: "batch", 2: "heads", 3: "src", 4: "d_kv"}
    past_axes = {1: "batch", 3: "past"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic; agreement checks verify the graphs
        keys, values = cross(ids, mask)
        torch.onnx.export(cross, (ids, mask), str(out / REWRITER_CROSS_KV_FILE), dynamo=False, opset_version=opset,
                          input_names=["input_ids", "attention_mask"], output_names=["cross_keys", "cross_values"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "src"}, "attention_mask": {0: "batch", 1: "src"},
                                        "cross_keys": kv_axes, "cross_values": kv_axes})
        torch.onnx.export(decoder, (step, mask, past, past, keys, values), str(out / REWRITER_DECODER_PAST_FILE),
                          dynamo=False, opset_version=opset,
                          input_names=["input_ids", "encoder_attention_mask", "past_keys", "past_values",
                                       "cross_keys", "cross_values"],
                          output_names=["logits", "present_keys", "present_values"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "new"},
                                        "encoder_attention_mask": {0: "batch", 1: "src"},
                                        "past_keys": past_axes, "past_values": past_axes,
                                        "cross_keys": {1: "batch", 3: "src"}, "cross_values": {1: "batch", 3: "src"},
                                        "logits": {0: "batch", 1: "new"}, "present_keys": {1: "batch", 3: "total"},
                                        "present_values": {1: "batch", 3: "total"}})
    return {"num_decoder_layers": int(layers), "num_heads": int(cfg.num_heads), "d_kv": int(cfg.d_kv)}
