"""The seq2seq rewriter: a T5-style model folder run by transformers (torch) on prompt.format_rewriter_input."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evdsearch.engine.rewriters.base import Evidence
from evdsearch.engine.rewriters.prompt import rewrite_in_chunks
from evdsearch.errors import IncompatibleArtifact

DEFAULT_MAX_NEW_TOKENS = 64  # when the folder's generation_config.json does not say
MAX_INPUT_TOKENS = 512  # inputs are truncated to this many tokens
CHUNK = 32  # prompts per generate call (a benchmark hands over thousands; padding grows with the batch)
TORCH_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


def has_torch_weights(folder: Path) -> bool:
    """True when transformers can load the folder's weights."""
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in TORCH_WEIGHTS)


class Seq2SeqRewriter:
    """Greedy (or beam) generation with AutoModelForSeq2SeqLM; one generate call per batch."""

    def __init__(self, folder: str | Path, device: str = "auto", max_new_tokens: int | None = None,
                 num_beams: int = 1) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from evdsearch.device import resolve_device

        self.folder = Path(folder)
        if not has_torch_weights(self.folder):
            raise IncompatibleArtifact(
                f"{self.folder} is not a seq2seq rewriter folder: expected config.json and one of "
                f"{', '.join(TORCH_WEIGHTS)} (a transformers save_pretrained folder)")
        self.name = str(self.folder)
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(self.folder, local_files_only=True)
        self.model.to(self.device).eval()
        configured = getattr(self.model.generation_config, "max_new_tokens", None)
        self.max_new_tokens = max_new_tokens or configured or DEFAULT_MAX_NEW_TOKENS
        self.num_beams = num_beams
        # Fast tokenizers are not safe to call from several threads at once ("Already borrowed"),
        # and the gRPC server is a thread pool: one generate at a time.
        self._lock = threading.Lock()

    def rewrite(self, query: str, evidence: Evidence) -> str:
        return self.rewrite_batch([(query, evidence)])[0]

    def rewrite_batch(self, items: Sequence[tuple[str, Evidence]]) -> list[str]:
        with self._lock:  # an empty batch calls no model
            return rewrite_in_chunks(items, self._generate, CHUNK)

    def _generate(self, prompts: list[str]) -> list[str]:
        import torch

        batch: Any = self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                                    max_length=MAX_INPUT_TOKENS).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                      do_sample=False)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]
