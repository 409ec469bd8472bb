"""Stage 2: Preference Ranking Optimization (PRO, arXiv 2306.17492) over DEQR's ranked candidates.

For candidates y1 > y2 > ... > yn (ordered by retriever score) and the policy's length-normalised
log-likelihood r_k = mean log p(y_k | x), PRO minimises
    -sum_{k=1}^{n-1} log( exp(r_k) / sum_{j>=k} exp(r_j) )  +  beta * NLL(y1),
a Plackett-Luce listwise loss plus SFT on the best candidate. trl (1.16) has no PRO trainer and its
DPO utilities assume pairs and a reference model, so this is a small module on plain transformers;
PRO needs no reference model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evdsearch.training.rewriter.config import ProConfig
from evdsearch.training.rewriter.data import RankedExample, load_examples, split_examples, tokenize_pairs
from evdsearch.training.rewriter.loop import check_out, save_rewriter, setup_torch, train_loop
from evdsearch.training.rewriter.model import count_parameters, load_pretrained


def pro_loss(scores: Any, mask: Any | None = None) -> Any:
    """Listwise PRO loss, averaged over the batch.

    `scores` (B, n): r_k per candidate, best first. `mask` (B, n) bool marks real candidates (a
    prefix of each row; padding after). Rows with fewer than two candidates contribute 0.
    """
    import torch

    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    neg_inf = torch.finfo(scores.dtype).min
    masked = scores.masked_fill(~mask, neg_inf)
    # logsumexp over j >= k for every k: a reversed cumulative logsumexp
    tails = torch.logcumsumexp(masked.flip(-1), dim=-1).flip(-1)
    terms = scores - tails  # log softmax of candidate k over {k..n}
    valid = mask[:, :-1] & mask[:, 1:]  # k < n and at least one candidate below it
    return -(terms[:, :-1] * valid).sum(dim=-1).mean()


def sequence_logprobs(model: Any, input_ids: Any, attention_mask: Any, labels: Any, n_per_input: int) -> Any:
    """Mean token log-probability of each labelled sequence, shape (B, n_per_input).

    The encoder runs once per input; its states are repeated for the input's n candidates.
    `labels` has B * n_per_input rows (input-major), padding marked -100.
    """
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    hidden = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    hidden = hidden.repeat_interleave(n_per_input, dim=0)
    mask = attention_mask.repeat_interleave(n_per_input, dim=0)
    logits = model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                   labels=labels).logits
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    keep = labels != -100
    mean = (logp * keep).sum(-1) / keep.sum(-1).clamp(min=1)
    return mean.view(-1, n_per_input)


def pick_list(candidates: Sequence[str], size: int, rng: random.Random | None) -> list[str]:
    """The best candidate plus `size - 1` others, in ranked order (random with rng, else evenly spaced)."""
    if len(candidates) <= size:
        return list(candidates)
    rest = range(1, len(candidates))
    if rng is not None:
        chosen = sorted(rng.sample(rest, size - 1))
    else:
        last = len(candidates) - 1  # evenly spaced over 1..last, both ends included
        chosen = sorted({round(1 + i * (last - 1) / max(1, size - 2)) for i in range(size - 1)})
    return [candidates[0]] + [candidates[i] for i in chosen]


def pro_batch_loss(model: Any, tokenizer: Any, batch: Sequence[RankedExample], cfg: ProConfig, device: str,
                   rng: random.Random | None) -> Any:
    """PRO + beta * NLL(best) for a batch of ranked examples."""
    import torch

    lists = [pick_list(e.candidates, cfg.list_size, rng) for e in batch]
    n = max(len(lst) for lst in lists)
    mask = torch.tensor([[i < len(lst) for i in range(n)] for lst in lists], device=device)
    targets = [lst[min(i, len(lst) - 1)] for lst in lists for i in range(n)]  # padding repeats the last
    enc = tokenize_pairs(tokenizer, [e.input for e in batch], targets, cfg.max_input_tokens,
                         cfg.max_target_tokens, device)
    scores = sequence_logprobs(model, enc["input_ids"], enc["attention_mask"], enc["labels"], n)
    return pro_loss(scores, mask) + cfg.beta * (-scores[:, 0]).mean()


def train_pro(cfg: ProConfig) -> Path:
    """Align an SFT rewriter with PRO and save it as a new folder; returns it."""
    check_out(cfg)
    device = setup_torch(cfg)
    examples = [e for e in load_examples(cfg.deqr, cfg.limit) if len(e.candidates) >= 2]
    train, val = split_examples(examples, cfg.val_fraction, cfg.seed)
    model, tokenizer = load_pretrained(cfg.base)
    model.to(device)
    rng = random.Random(cfg.seed + 7)

    def loss(batch: Sequence[RankedExample]) -> Any:
        import torch

        return pro_batch_loss(model, tokenizer, batch, cfg, device, rng if torch.is_grad_enabled() else None)

    result = train_loop(model, loss, train, val, cfg, "rewriter pro")
    meta = {"stage": "pro", "config": cfg.to_json(), "parameters": count_parameters(model), "result": result}
    return save_rewriter(model.cpu(), tokenizer, cfg, meta)
