"""The seq2seq rewriter on onnxruntime: encoder once, then a greedy loop over the decoder step in numpy.

Reads the export that `evdsearch train export-onnx` writes into a rewriter folder (`onnx/encoder.onnx`,
`onnx/decoder.onnx`, `onnx/export.json`) plus the folder's tokenizer. The decoder takes the whole
prefix each step (no KV cache): rewrites are short and the models small, so the simpler graph wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.artifacts import REWRITER_DECODER_FILE as DECODER_FILE
from evdsearch.artifacts import REWRITER_ENCODER_FILE as ENCODER_FILE
from evdsearch.artifacts import REWRITER_ONNX_DIR as ONNX_DIR
from evdsearch.artifacts import REWRITER_ONNX_FORMAT as FORMAT
from evdsearch.artifacts import REWRITER_ONNX_FORMAT_VERSION as FORMAT_VERSION
from evdsearch.artifacts import REWRITER_ONNX_META as META_FILE
from evdsearch.artifacts import REWRITER_WEIGHTS as WEIGHTS
from evdsearch.engine.rewriters.base import Evidence
from evdsearch.engine.rewriters.prompt import format_rewriter_input
from evdsearch.errors import IncompatibleArtifact, InvalidInput, ModelUnavailable

MAX_INPUT_TOKENS = 512  # as engine.rewriters.seq2seq
CHUNK = 32  # prompts per generate call: one call over thousands pads them all to the longest and
# makes the (no KV cache) decoder return (B, T, vocab) logits for all of them every step
_log = logging.getLogger(__name__)


def weights_digest(folder: Path) -> str | None:
    """sha256 of the folder's torch weights, or None when the folder ships ONNX only."""
    path = folder / WEIGHTS
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def session_providers(device: str = "auto") -> list[str]:
    """CUDAExecutionProvider (then CPU) when onnxruntime has it and the device allows; else CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise InvalidInput(f"unknown device {device!r}: use auto, cpu or cuda")
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device.startswith("cuda"):
        raise InvalidInput("--device cuda asked for, but onnxruntime has no CUDAExecutionProvider "
                           "(install onnxruntime-gpu, the [gpu] extra); use --device cpu")
    return ["CPUExecutionProvider"]


def make_session(path: Path, device: str = "auto", threads: int = 0) -> Any:
    """An onnxruntime InferenceSession on the chosen providers."""
    import onnxruntime as ort

    from evdsearch.engine.threads import session_threads

    options = ort.SessionOptions()
    threads = threads or session_threads()  # the server's one budget unless the caller names a count
    if threads > 0:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # CUDA EP falls back to CPU for a few ops; not worth a warning per run
    return ort.InferenceSession(str(path), sess_options=options, providers=session_providers(device))


def read_meta(folder: Path) -> dict[str, Any]:
    """onnx/export.json, checked for format and for staleness against the folder's torch weights."""
    path = folder / ONNX_DIR / META_FILE
    if not path.is_file():
        raise IncompatibleArtifact(f"{folder} has no {ONNX_DIR}/{META_FILE}; re-export it with "
                                   "`evdsearch train export-onnx`")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise IncompatibleArtifact(f"{path}: not a {FORMAT} v{FORMAT_VERSION} export; re-export it")
    current = weights_digest(folder)
    if current is not None and meta.get("weights_sha256") not in (None, current):
        raise IncompatibleArtifact(f"the ONNX export in {folder} is stale (the torch weights changed after it "
                                   "was made); re-run `evdsearch train export-onnx`")
    return meta


class OnnxSeq2SeqRewriter:
    """Greedy generation with onnxruntime; same tokens as transformers' greedy `generate`."""

    def __init__(self, folder: str | Path, device: str = "auto", threads: int = 0) -> None:
        try:
            from transformers import AutoTokenizer
        except ModuleNotFoundError as err:
            raise ModelUnavailable(f"the ONNX rewriter needs transformers for its tokenizer ({err})") from err
        self.folder = Path(folder)
        self.name = str(self.folder)
        self.meta = read_meta(self.folder)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.encoder = make_session(self.folder / ONNX_DIR / ENCODER_FILE, device, threads)
        self.decoder = make_session(self.folder / ONNX_DIR / DECODER_FILE, device, threads)
        self.providers = self.encoder.get_providers()
        self.max_new_tokens = int(self.meta["max_new_tokens"])
        self._lock = threading.Lock()  # fast tokenizers are not thread-safe

    def rewrite(self, query: str, evidence: Evidence) -> str:
        return self.rewrite_batch([(query, evidence)])[0]

    def rewrite_batch(self, items: Sequence[tuple[str, Evidence]]) -> list[str]:
        if not items:
            return []
        prompts = [format_rewriter_input(query, evidence) for query, evidence in items]
        texts: list[str] = []
        with self._lock:
            for start in range(0, len(prompts), CHUNK):
                tokens = self.generate_ids(prompts[start : start + CHUNK])
                texts += self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [" ".join(t.split()) or query for t, (query, _) in zip(texts, items, strict=True)]

    def generate_ids(self, prompts: list[str], max_new_tokens: int | None = None) -> np.ndarray:
        """Generated token ids (B, T) including the decoder start token, padded after EOS."""
        batch = self.tokenizer(prompts, return_tensors="np", padding=True, truncation=True,
                               max_length=MAX_INPUT_TOKENS)
        ids = batch["input_ids"].astype(np.int64)
        mask = batch["attention_mask"].astype(np.int64)
        hidden = self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        start, eos, pad = (int(self.meta[k]) for k in ("decoder_start_token_id", "eos_token_id", "pad_token_id"))
        out = np.full((len(prompts), 1), start, dtype=np.int64)
        done = np.zeros(len(prompts), dtype=bool)
        for _ in range(max_new_tokens or self.max_new_tokens):
            logits = self.next_logits(out, hidden, mask)
            step = np.where(done, pad, logits.argmax(-1)).astype(np.int64)
            out = np.concatenate([out, step[:, None]], axis=1)
            done |= step == eos
            if done.all():
                break
        return out

    def next_logits(self, decoder_ids: np.ndarray, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits of the next token after `decoder_ids`, shape (B, vocab)."""
        return self.decoder.run(None, {"decoder_input_ids": decoder_ids, "encoder_hidden_states": hidden,
                                       "encoder_attention_mask": mask})[0]


def load(folder: Path, device: str = "auto") -> OnnxSeq2SeqRewriter:
    """Entry point engine.rewriters uses when a rewriter folder holds an ONNX export."""
    return OnnxSeq2SeqRewriter(folder, device=device)
