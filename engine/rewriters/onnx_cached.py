"""Greedy decoding with a key/value cache on onnxruntime: each step runs the decoder over the new token only.

The export's `encoder_kv.onnx` runs the encoder once and returns every decoder layer's cross-attention
keys/values; `decoder_past.onnx` takes new tokens plus the earlier tokens' self-attention keys/values
and returns logits and the grown keys/values. Rows that reach EOS leave the batch, so a long rewrite
does not make the short ones in its batch keep decoding. With one row, `draft_from_prompt` proposes
the next tokens by copying what follows the last generated token in the prompt (rewrites copy the query
and the descriptions), and the decoder checks the whole draft in one call: a draft token is kept only
where it equals the model's own greedy choice, so the output is the greedy output (prompt lookup
decoding, a form of speculative decoding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class DecodeStats:
    """What the cached decoder did, summed over calls (bench rewrite-latency reads it)."""

    calls: int = 0  # decoder_past runs
    tokens: int = 0  # tokens generated (excluding the start token), all rows
    drafted: int = 0  # draft tokens proposed (one-row speculative decoding)
    accepted: int = 0  # draft tokens the model confirmed


@dataclass
class TokenIds:
    """Special token ids of the rewriter."""

    start: int  # decoder start token
    eos: int  # end of sequence
    pad: int  # what follows EOS in the output


def draft_from_prompt(prompt: np.ndarray, generated: list[int], k: int) -> list[int]:
    """Up to k tokens that followed the latest occurrence of the last generated token(s) in the prompt.

    Two-token matches are preferred over one-token ones (fewer wrong drafts); [] when neither occurs.
    """
    for width in (2, 1):
        if len(generated) < width:
            continue
        tail = generated[-width:]
        for i in range(len(prompt) - width, -1, -1):
            if list(prompt[i : i + width]) == tail:
                return [int(t) for t in prompt[i + width : i + width + k]]
    return []


class CachedDecoder:
    """Runs the two cached graphs; thread-compatible (the caller serialises calls)."""

    def __init__(self, cross_kv: Any, decoder: Any, ids: TokenIds, draft_tokens: int = 8) -> None:
        self.cross_kv = cross_kv
        self.decoder = decoder
        self.ids = ids
        self.draft_tokens = draft_tokens  # 0: no speculative decoding
        self.stats = DecodeStats()

    def _step(self, tokens: np.ndarray, mask: np.ndarray, past: tuple[np.ndarray, np.ndarray],
              cross: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.stats.calls += 1
        logits, keys, values = self.decoder.run(None, {
            "input_ids": tokens, "encoder_attention_mask": mask, "past_keys": past[0], "past_values": past[1],
            "cross_keys": cross[0], "cross_values": cross[1]})
        return logits, keys, values

    def _empty_past(self, batch: int, cross_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        layers, heads, d_kv = cross_keys.shape[0], cross_keys.shape[2], cross_keys.shape[4]
        empty = np.zeros((layers, batch, heads, 0, d_kv), dtype=cross_keys.dtype)
        return empty, empty

    def generate(self, input_ids: np.ndarray, mask: np.ndarray, max_new_tokens: int) -> np.ndarray:
        """(B, 1 + T) token ids: the start token, the greedy tokens, EOS, then padding."""
        cross_keys, cross_values = self.cross_kv.run(None, {"input_ids": input_ids, "attention_mask": mask})
        if len(input_ids) == 1 and self.draft_tokens > 0:
            row = self._speculative(input_ids[0][mask[0] > 0], mask, (cross_keys, cross_values), max_new_tokens)
            return self._pack([row])
        rows: list[list[int]] = [[] for _ in range(len(input_ids))]
        active = np.arange(len(input_ids))
        past = self._empty_past(len(input_ids), cross_keys)
        cross = (cross_keys, cross_values)
        tokens = np.full((len(input_ids), 1), self.ids.start, dtype=np.int64)
        for _ in range(max_new_tokens):
            logits, keys, values = self._step(tokens, mask, past, cross)
            chosen = logits[:, -1].argmax(-1)
            for row, token in zip(active, chosen, strict=True):
                rows[row].append(int(token))
            self.stats.tokens += len(active)
            alive = chosen != self.ids.eos
            if not alive.any():
                break
            if not alive.all():  # finished rows leave the batch
                active, chosen, mask = active[alive], chosen[alive], mask[alive]
                keys, values = keys[:, alive], values[:, alive]
                cross = (cross[0][:, alive], cross[1][:, alive])
            past = (keys, values)
            tokens = chosen.astype(np.int64)[:, None]
        return self._pack(rows)

    def _speculative(self, prompt: np.ndarray, mask: np.ndarray, cross: tuple[np.ndarray, np.ndarray],
                     max_new_tokens: int) -> list[int]:
        """One row: greedy tokens, several per decoder call where the prompt predicts them."""
        generated: list[int] = []
        past = self._empty_past(1, cross[0])
        pending = [self.ids.start]  # tokens whose keys/values are not cached yet
        while len(generated) < max_new_tokens:
            draft = draft_from_prompt(prompt, generated, min(self.draft_tokens, max_new_tokens - len(generated) - 1))
            tokens = np.array([pending + draft], dtype=np.int64)
            logits, keys, values = self._step(tokens, mask, past, cross)
            choices = logits[0, len(pending) - 1 :].argmax(-1)  # the model's token after each input position
            kept = 0
            while kept < len(draft) and draft[kept] == int(choices[kept]) and draft[kept] != self.ids.eos:
                kept += 1
            new = [*draft[:kept], int(choices[kept])]
            self.stats.drafted += len(draft)
            self.stats.accepted += kept
            self.stats.tokens += len(new)
            generated += new
            if new[-1] == self.ids.eos:
                break
            cached = past[0].shape[3] + len(pending) + kept  # keys of the start/pending and kept draft tokens
            past = (keys[:, :, :, :cached], values[:, :, :, :cached])
            pending = [new[-1]]
        return generated[:max_new_tokens]

    def _pack(self, rows: list[list[int]]) -> np.ndarray:
        width = 1 + max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), self.ids.pad, dtype=np.int64)
        out[:, 0] = self.ids.start
        for i, row in enumerate(rows):
            out[i, 1 : 1 + len(row)] = row
        return out
