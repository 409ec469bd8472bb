"""Greedy decoding with a key/value cache on onnxruntime: each step runs the decoder over the new token only.

The export's `encoder_kv.onnx` runs the encoder once and returns every decoder layer's cross-attention
keys/values; `decoder_past.onnx` takes new tokens plus the earlier tokens' self-attention keys/values
and returns logits and the grown keys/values. Rows that reach EOS leave the batch, so a long rewrite
does not make the short ones in its batch keep decoding, and the last row left (or a batch of one)
decodes speculatively: `draft_from_prompt` proposes the next tokens by copying what follows, in the
prompt or in the rewrite so far, the place the rewrite is copying from (rewrites copy the query and
the descriptions, and a looping rewrite copies itself), and the decoder checks the whole draft in one
call: a draft token is kept only where it equals the model's own greedy choice, so the output is the
greedy output (prompt lookup decoding, a form of speculative decoding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class DecodeStats:
    """What the cached decoder did, summed over calls (bench rewrite-latency reads it)."""

    calls: int = 0  # decoder_past runs
    tokens: int = 0  # tokens generated (excluding the start token), all rows
    drafted: int = 0  # draft tokens proposed (speculative decoding)
    accepted: int = 0  # draft tokens the model confirmed


@dataclass
class TokenIds:
    """Special token ids of the rewriter."""

    start: int  # decoder start token
    eos: int  # end of sequence
    pad: int  # what follows EOS in the output


@dataclass
class DraftSource:
    """What the prompt format tells the drafts: where the text a rewrite starts by copying begins, and which
    tokens a rewrite never copies (the format's separators), so drafts stop before them."""

    start: int = 0  # prompt position of the query (after the task prefix)
    stops: frozenset[int] = field(default_factory=frozenset)


def _longest_match(seq: np.ndarray, end: int, generated: list[int]) -> tuple[int, int]:
    """(n, position after it) for the place in seq[:end] that equals the longest run of generated's last
    tokens, the earliest among equally long ones; (0, -1) when the last token does not occur."""
    best, after = 0, -1
    for i in np.flatnonzero(seq[:end] == generated[-1]):
        n = 1
        while n < len(generated) and i - n >= 0 and seq[i - n] == generated[-1 - n]:
            n += 1
        if n > best:
            best, after = n, int(i) + 1
    return best, after


def draft_from_prompt(prompt: np.ndarray, generated: list[int], k: int,
                      source: DraftSource | None = None) -> list[int]:
    """Up to k tokens that followed, in the prompt or earlier in the rewrite itself, the longest run equal to
    the last generated tokens (the prompt's query when nothing is generated yet); [] when nothing matches."""
    source = source or DraftSource()
    if k <= 0:
        return []
    if not generated:
        seq, at = prompt, source.start
    else:
        own = np.asarray(generated)
        in_prompt, at = _longest_match(prompt, len(prompt), generated)
        in_own, own_at = _longest_match(own, len(own) - 1, generated)
        seq = prompt
        if in_own > in_prompt:
            seq, at = own, own_at
        if at < 0:
            return []
    draft: list[int] = []
    for token in seq[at : at + k]:
        if int(token) in source.stops:
            break
        draft.append(int(token))
    return draft


class CachedDecoder:
    """Runs the two cached graphs; thread-compatible (the caller serialises calls)."""

    def __init__(self, cross_kv: Any, decoder: Any, ids: TokenIds, draft_tokens: int = 8,
                 drafts: DraftSource | None = None) -> None:
        self.cross_kv = cross_kv
        self.decoder = decoder
        self.ids = ids
        self.draft_tokens = draft_tokens  # 0: no speculative decoding
        self.drafts = drafts or DraftSource()
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
        rows: list[list[int]] = [[] for _ in range(len(input_ids))]
        active = np.arange(len(input_ids))
        past = self._empty_past(len(input_ids), cross_keys)
        cross = (cross_keys, cross_values)
        row_mask = mask
        pending = np.full(len(input_ids), self.ids.start, dtype=np.int64)  # each row's token not cached yet
        while len(rows[active[0]]) < max_new_tokens:
            if len(active) == 1 and self.draft_tokens > 0:  # alone: several tokens per call where drafts hold
                row = int(active[0])
                self._speculative(input_ids[row][mask[row] > 0], row_mask, cross, max_new_tokens, rows[row],
                                  past, int(pending[0]))
                break
            logits, keys, values = self._step(pending[:, None], row_mask, past, cross)
            chosen = logits[:, -1].argmax(-1)
            for row, token in zip(active, chosen, strict=True):
                rows[row].append(int(token))
            self.stats.tokens += len(active)
            alive = chosen != self.ids.eos
            if not alive.any():
                break
            if not alive.all():  # finished rows leave the batch
                active, chosen, row_mask = active[alive], chosen[alive], row_mask[alive]
                keys, values = keys[:, alive], values[:, alive]
                cross = (cross[0][:, alive], cross[1][:, alive])
            past = (keys, values)
            pending = chosen.astype(np.int64)
        return self._pack(rows)

    def _speculative(self, prompt: np.ndarray, mask: np.ndarray, cross: tuple[np.ndarray, np.ndarray],
                     max_new_tokens: int, generated: list[int], past: tuple[np.ndarray, np.ndarray],
                     token: int) -> None:
        """Extend one row's `generated` greedily, several tokens per decoder call where the drafts predict them;
        `past` holds the keys/values of the tokens before `token`, the row's newest token."""
        pending = [token]  # tokens whose keys/values are not cached yet
        while len(generated) < max_new_tokens:
            draft = draft_from_prompt(prompt, generated, min(self.draft_tokens, max_new_tokens - len(generated) - 1),
                                      self.drafts)
            logits, keys, values = self._step(np.array([pending + draft], dtype=np.int64), mask, past, cross)
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
            cached = past[0].shape[3] + len(pending) + kept  # keys of the pending and kept draft tokens
            past = (keys[:, :, :, :cached], values[:, :, :, :cached])
            pending = [new[-1]]
        del generated[max_new_tokens:]

    def _pack(self, rows: list[list[int]]) -> np.ndarray:
        width = 1 + max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), self.ids.pad, dtype=np.int64)
        out[:, 0] = self.ids.start
        for i, row in enumerate(rows):
            out[i, 1 : 1 + len(row)] = row
        return out
