"""Text encoding for training that only pays for the tokens a batch uses.

open_clip's CLIP runs the text tower over the full context (77 positions) even when captions are
20 tokens long. With a causal mask and EOT pooling, positions after a caption's EOT never reach
its pooled feature, so cutting the batch to its longest caption gives the same features for a
fraction of the compute. Models this does not hold for fall back to `encode_text`.
"""

from __future__ import annotations

from typing import Any


def can_trim(model: Any) -> bool:
    """Standard open_clip CLIP text tower: causal mask, argmax (EOT) pooling."""
    return (getattr(model, "text_pool_type", None) == "argmax" and getattr(model, "attn_mask", None) is not None
            and hasattr(model, "token_embedding") and hasattr(model, "positional_embedding"))


def encode_text_trimmed(model: Any, tokens: Any, normalize: bool = True) -> Any:
    """`model.encode_text(tokens)` computed over the first max-length positions only."""
    import torch
    import torch.nn.functional as F
    from open_clip.transformer import text_global_pool

    if not can_trim(model):
        return model.encode_text(tokens, normalize=normalize)
    length = int((tokens != 0).sum(dim=1).max())
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = text_global_pool(model.ln_final(x), tokens, "argmax")
    projection = model.text_projection
    if projection is not None:
        x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
    return F.normalize(x, dim=-1) if normalize else x
