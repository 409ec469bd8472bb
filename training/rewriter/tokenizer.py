"""A subword tokenizer trained here (offline) on captions + descriptions, wrapped for transformers.

BPE over a Metaspace pre-tokenizer with every printable ASCII character in the base alphabet, so
entity names never seen in training (unseen entities) still spell out, and decoding restores spaces.
Special tokens follow T5: <pad>=0 (also the decoder start), </s>=1, <unk>=2.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5
ALPHABET = sorted(set(string.printable) - set(string.whitespace))  # every ASCII word stays spellable


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000) -> Any:
    """Train a BPE tokenizer; returns a transformers PreTrainedTokenizerFast with pad/eos/unk set."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                  initial_alphabet=ALPHABET + ["\u2581"], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)
