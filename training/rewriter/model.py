"""Where the rewriter starts: a pretrained T5 by name or folder, or a small T5 from scratch (offline).

`--base t5-small` / `google/flan-t5-base` / a local folder load with transformers (a hub name fails
offline in one clear line); `--base scratch` builds `ScratchT5Config` with a tokenizer trained on
the training texts, for machines without pretrained weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import ModelUnavailable

SCRATCH = "scratch"


@dataclass
class ScratchT5Config:
    """A small T5 (about 3M parameters) that trains in minutes on 2 CPU cores."""

    vocab_size: int = 4000  # BPE vocabulary trained on captions + descriptions
    d_model: int = 128  # hidden size
    d_ff: int = 512  # feed-forward size
    d_kv: int = 32  # size of one attention head
    num_heads: int = 4  # attention heads
    num_layers: int = 3  # encoder layers
    num_decoder_layers: int = 3  # decoder layers
    dropout_rate: float = 0.1  # dropout in training


def scratch_model(texts: Iterable[str], cfg: ScratchT5Config, seed: int = 0) -> tuple[Any, Any]:
    """A randomly initialised T5ForConditionalGeneration and its freshly trained tokenizer."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from evdsearch.training.rewriter.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    torch.manual_seed(seed)
    params = {k: v for k, v in asdict(cfg).items() if k != "vocab_size"}
    config = T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
                      feed_forward_proj="relu", tie_word_embeddings=True, **params)
    return T5ForConditionalGeneration(config), tokenizer


def _hub_reachable() -> bool:
    from evdsearch.clip_models import _hub_reachable as reachable

    return reachable()


def _local_folder(name: str) -> Path | None:
    """`name` itself when it is a folder, else its snapshot in the local Hugging Face cache, else None.

    Resolved here because transformers 5 still sends HEAD requests (with retries, ~25 s offline)
    for a name it cannot find locally, even with local_files_only=True.
    """
    if Path(name).is_dir():
        return Path(name)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def load_pretrained(name: str) -> tuple[Any, Any]:
    """A seq2seq model + tokenizer from a local folder, the local HF cache, or (online) the hub."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    folder = _local_folder(name)
    if folder is not None:
        try:
            return (AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True),
                    AutoTokenizer.from_pretrained(folder, local_files_only=True))
        except (OSError, ValueError) as err:
            raise ModelUnavailable(f"{name} is not a transformers seq2seq model folder ({err})") from err
    if not _hub_reachable():
        raise ModelUnavailable(
            f"cannot download T5 {name!r}: the model hub is unreachable (offline) and it is not in the local "
            f"cache; pass a local folder with --base DIR, or --base scratch to train a small T5 from scratch")
    try:
        return AutoModelForSeq2SeqLM.from_pretrained(name), AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise ModelUnavailable(f"cannot load T5 {name!r} from the hub: {err}") from err


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
