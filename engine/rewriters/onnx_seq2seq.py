"""The seq2seq rewriter on onnxruntime: greedy decoding with a key/value cache (format 2 exports), else
the uncached decoder step over the whole prefix (format 1 exports, and `cached=False` for comparisons).

Reads the export that `evdsearch train export-onnx` writes into a rewriter folder (`onnx/encoder.onnx`,
`onnx/decoder.onnx`, `onnx/encoder_kv.onnx`, `onnx/decoder_past.onnx`, `onnx/export.json`) plus the
folder's tokenizer. Sessions are made on first use, so a runner loads only the graphs it runs.
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

from evdsearch.artifacts import REWRITER_CROSS_KV_FILE as CROSS_KV_FILE
from evdsearch.artifacts import REWRITER_DECODER_FILE as DECODER_FILE
from evdsearch.artifacts import REWRITER_DECODER_PAST_FILE as DECODER_PAST_FILE
from evdsearch.artifacts import REWRITER_ENCODER_FILE as ENCODER_FILE
from evdsearch.artifacts import REWRITER_ONNX_DIR as ONNX_DIR
from evdsearch.artifacts import REWRITER_ONNX_FORMAT as FORMAT
from evdsearch.artifacts import REWRITER_ONNX_FORMAT_VERSIONS as FORMAT_VERSIONS
from evdsearch.artifacts import REWRITER_ONNX_META as META_FILE
from evdsearch.artifacts import REWRITER_WEIGHTS as WEIGHTS
from evdsearch.engine.rewriters.base import Evidence
from evdsearch.engine.rewriters.onnx_cached import CachedDecoder, DraftSource, TokenIds
from evdsearch.engine.rewriters.prompt import PREFIX, SEPARATORS, rewrite_in_chunks
from evdsearch.errors import IncompatibleArtifact, InvalidInput, ModelUnavailable

MAX_INPUT_TOKENS = 512  # as engine.rewriters.seq2seq
CHUNK = 64  # prompts per generate call (the batcher's largest batch): one call over thousands pads them all
# to the longest; prompts are sorted by length first, so a chunk holds prompts of similar length
DRAFT_TOKENS = 8  # prompt tokens a one-row rewrite proposes per decoder call (speculative decoding)
# intra-op threads of the cached decoder's step graph (the encoder graph gets the thread budget: a batch of
# prompts is one large matrix product, 1.5x faster on 2 threads): its matrices are d_model-sized (128 here),
# too small to split, and a decode alternates tiny graph runs with numpy; measured on the 2-core box
# (docs/rewriter.md): 1 thread without spinning was fastest for one row and level for 16
DECODE_THREADS = 1
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


def make_session(path: Path, device: str = "auto", threads: int = 0, spinning: bool = True) -> Any:
    """An onnxruntime InferenceSession on the chosen providers; `spinning=False`: idle pool threads sleep
    instead of spinning between runs (for graphs run many times in a Python loop)."""
    import onnxruntime as ort

    from evdsearch.engine.threads import session_threads

    options = ort.SessionOptions()
    threads = threads or session_threads()  # the server's one budget unless the caller names a count
    if threads > 0:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # CUDA EP falls back to CPU for a few ops; not worth a warning per run
    return ort.InferenceSession(str(path), sess_options=options, providers=session_providers(device))


def read_meta(folder: Path) -> dict[str, Any]:
    """onnx/export.json, checked for format and for staleness against the folder's torch weights."""
    path = folder / ONNX_DIR / META_FILE
    if not path.is_file():
        raise IncompatibleArtifact(f"{folder} has no {ONNX_DIR}/{META_FILE}; re-export it with "
                                   "`evdsearch train export-onnx`")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("format_version") not in FORMAT_VERSIONS:
        raise IncompatibleArtifact(f"{path}: not a {FORMAT} export of version "
                                   f"{' or '.join(map(str, FORMAT_VERSIONS))}; re-export it")
    current = weights_digest(folder)
    if current is not None and meta.get("weights_sha256") not in (None, current):
        raise IncompatibleArtifact(f"the ONNX export in {folder} is stale (the torch weights changed after it "
                                   "was made); re-run `evdsearch train export-onnx`")
    return meta


def prompt_drafts(tokenizer: Any) -> DraftSource:
    """Where a prompt's query starts (after the task prefix) and the tokens that end in a separator of the
    prompt format, for the speculative drafts."""
    start = len(tokenizer(PREFIX, add_special_tokens=False)["input_ids"])
    stops = frozenset(i for token, i in tokenizer.get_vocab().items() if token.endswith(SEPARATORS))
    return DraftSource(start, stops)


class OnnxSeq2SeqRewriter:
    """Greedy generation with onnxruntime; same tokens as transformers' greedy `generate`.

    `cached`: decode with the key/value cache (None: whenever the export has it); `draft_tokens`: how many
    prompt tokens a one-row rewrite proposes per decoder call (0: one token per call). Both give the same
    tokens; they differ in speed only.
    """

    def __init__(self, folder: str | Path, device: str = "auto", threads: int = 0, cached: bool | None = None,
                 draft_tokens: int = DRAFT_TOKENS) -> None:
        try:
            from transformers import AutoTokenizer
        except ModuleNotFoundError as err:
            raise ModelUnavailable(f"the ONNX rewriter needs transformers for its tokenizer ({err})") from err
        self.folder = Path(folder)
        self.name = str(self.folder)
        self.meta = read_meta(self.folder)
        has_cache = all((self.folder / ONNX_DIR / f).is_file() for f in (CROSS_KV_FILE, DECODER_PAST_FILE))
        if cached and not has_cache:
            raise IncompatibleArtifact(f"{self.folder}'s ONNX export has no cached decoder (format 1); re-export it "
                                       "with `evdsearch train export-onnx --rewriter`")
        self.cached = has_cache if cached is None else cached
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self._session_args = (device, threads)
        self._sessions: dict[str, Any] = {}
        self.ids = TokenIds(*(int(self.meta[k]) for k in ("decoder_start_token_id", "eos_token_id", "pad_token_id")))
        self.draft_tokens = draft_tokens
        self.decoder_cache = CachedDecoder(self._session(CROSS_KV_FILE), self._session(DECODER_PAST_FILE), self.ids,
                                           draft_tokens, prompt_drafts(self.tokenizer)) if self.cached else None
        self.providers = self._session(CROSS_KV_FILE if self.cached else ENCODER_FILE).get_providers()
        self.max_new_tokens = int(self.meta["max_new_tokens"])
        self._lock = threading.Lock()  # fast tokenizers are not thread-safe; one decode uses the whole budget

    def _session(self, name: str) -> Any:
        if name not in self._sessions:
            device, threads = self._session_args
            if name == DECODER_PAST_FILE:  # many tiny runs: see DECODE_THREADS
                threads = threads or DECODE_THREADS
            self._sessions[name] = make_session(self.folder / ONNX_DIR / name, device, threads, spinning=False)
        return self._sessions[name]

    @property
    def encoder(self) -> Any:
        """The uncached path's encoder session (made on first use)."""
        return self._session(ENCODER_FILE)

    @property
    def decoder(self) -> Any:
        """The uncached path's decoder-step session (made on first use)."""
        return self._session(DECODER_FILE)

    def rewrite(self, query: str, evidence: Evidence) -> str:
        return self.rewrite_batch([(query, evidence)])[0]

    def rewrite_batch(self, items: Sequence[tuple[str, Evidence]]) -> list[str]:
        with self._lock:  # an empty batch calls no model
            return rewrite_in_chunks(items, self._generate_texts, CHUNK, by_length=True)

    def _generate_texts(self, prompts: list[str]) -> list[str]:
        return self.tokenizer.batch_decode(self.generate_ids(prompts), skip_special_tokens=True)

    def generate_ids(self, prompts: list[str], max_new_tokens: int | None = None,
                     cached: bool | None = None) -> np.ndarray:
        """Generated token ids (B, T) including the decoder start token, padded after EOS."""
        batch = self.tokenizer(prompts, return_tensors="np", padding=True, truncation=True,
                               max_length=MAX_INPUT_TOKENS)
        ids = batch["input_ids"].astype(np.int64)
        mask = batch["attention_mask"].astype(np.int64)
        steps = max_new_tokens or self.max_new_tokens
        if self.cached if cached is None else cached:
            if self.decoder_cache is None:
                raise IncompatibleArtifact(f"{self.folder}'s ONNX export has no cached decoder; re-export it")
            return self.decoder_cache.generate(ids, mask, steps)
        hidden = self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        out = np.full((len(prompts), 1), self.ids.start, dtype=np.int64)
        done = np.zeros(len(prompts), dtype=bool)
        for _ in range(steps):
            logits = self.next_logits(out, hidden, mask)
            step = np.where(done, self.ids.pad, logits.argmax(-1)).astype(np.int64)
            out = np.concatenate([out, step[:, None]], axis=1)
            done |= step == self.ids.eos
            if done.all():
                break
        return out

    def next_logits(self, decoder_ids: np.ndarray, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits of the next token after `decoder_ids`, shape (B, vocab) (the uncached graph)."""
        return self.decoder.run(None, {"decoder_input_ids": decoder_ids, "encoder_hidden_states": hidden,
                                       "encoder_attention_mask": mask})[0]


def load(folder: Path, device: str = "auto") -> OnnxSeq2SeqRewriter:
    """Entry point engine.rewriters uses when a rewriter folder holds an ONNX export."""
    return OnnxSeq2SeqRewriter(folder, device=device)
