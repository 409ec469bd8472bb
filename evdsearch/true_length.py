"""True-length CLIP text encoding: run the text tower on a batch's longest real length, not the full context.

open_clip's CLIP runs the text tower over the whole context (77 positions) even when a query is
8-20 tokens long. With a causal mask and end-of-text (argmax / eos) pooling, positions after a
text's EOT never reach its pooled feature, so cutting the batch to its longest text gives the same
vectors (to float rounding) for a fraction of the compute. Whether that holds is decided once per
model from its structure (`can_trim`); other towers keep the full length. Training, the torch
engine and the ONNX export all go through the functions here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

POOLS_AT_EOT = ("argmax", "eos")  # open_clip text_pool_type values that pool at the end-of-text token
PAD_ID = 0  # open_clip's SimpleTokenizer pads with 0 after the EOT token
MIN_GROUP_SLACK = 8  # tokens a length group may span before a longer text starts a new group
GROUP_SLACK = 0.5  # ... or this share of the group's shortest length, whichever is larger


def can_trim(model: Any) -> bool:
    """True when cutting tokens after the longest EOT cannot change the embedding.

    That needs a causal attention mask (later positions never reach earlier ones) and pooling at
    the EOT token; a tower without either (e.g. SigLIP's first-token pooling, no mask) keeps 77.
    """
    return (getattr(model, "text_pool_type", None) in POOLS_AT_EOT
            and getattr(model, "attn_mask", None) is not None
            and hasattr(model, "token_embedding") and hasattr(model, "positional_embedding")
            and hasattr(model, "transformer") and hasattr(model, "ln_final"))


def token_lengths(tokens: Any) -> np.ndarray:
    """Real length (up to and including EOT) of each row of a padded token batch (torch or numpy)."""
    array = tokens.cpu().numpy() if hasattr(tokens, "cpu") else np.asarray(tokens)
    return (array != PAD_ID).sum(axis=1).astype(np.int64)


def encode_text_prefix(model: Any, tokens: Any, normalize: bool = True) -> Any:
    """`model.encode_text` over exactly the positions `tokens` has (B, L), L <= the context length.

    The positional embedding and the causal mask are sliced to L; the slice follows `tokens.shape`,
    so an ONNX trace of this function keeps a dynamic sequence axis.
    """
    import torch
    import torch.nn.functional as F
    from open_clip.transformer import text_global_pool

    length = tokens.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = text_global_pool(model.ln_final(x), tokens, model.text_pool_type,
                         eos_token_id=getattr(model, "text_eos_id", None))
    projection = model.text_projection
    if projection is not None:
        x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
    return F.normalize(x, dim=-1) if normalize else x


def encode_text_trimmed(model: Any, tokens: Any, normalize: bool = True) -> Any:
    """`model.encode_text(tokens)` computed over the batch's longest real length (full length if not exact)."""
    if not can_trim(model):
        return model.encode_text(tokens, normalize=normalize)
    length = max(1, int(token_lengths(tokens).max())) if len(tokens) else tokens.shape[1]
    return encode_text_prefix(model, tokens[:, :length], normalize=normalize)


def length_groups(lengths: np.ndarray, max_batch: int = 256) -> list[np.ndarray]:
    """Row indexes grouped by similar length, shortest first, so short texts do not pay for long ones.

    A group grows (in length order) until the next text is longer than the group's shortest by more
    than max(MIN_GROUP_SLACK, GROUP_SLACK * shortest) tokens, or holds max_batch rows: each extra
    group is one more encoder call, so near-equal lengths share one.
    """
    order = np.argsort(lengths, kind="stable")
    groups: list[list[int]] = []
    first = 0
    for index in order.tolist():
        length = int(lengths[index])
        if (not groups or len(groups[-1]) >= max_batch
                or length - first > max(MIN_GROUP_SLACK, GROUP_SLACK * first)):
            groups.append([])
            first = length
        groups[-1].append(index)
    return [np.asarray(group, dtype=np.int64) for group in groups]
