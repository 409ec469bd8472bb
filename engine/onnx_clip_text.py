"""CLIP text tower on onnxruntime: the engine's fast text encoder when a checkpoint carries an ONNX export.

Text encoding is >99 % of a query's server time with torch on CPU; the exported graph runs the same
weights about 10-30x faster there. Images and everything else still go through the torch model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.artifacts import CLIP_ONNX_DIR as EXPORT_DIR
from evdsearch.artifacts import CLIP_TEXT_FILE as TEXT_FILE
from evdsearch.artifacts import CLIP_TEXT_INT8_FILE as TEXT_INT8_FILE
from evdsearch.artifacts import CLIP_TEXT_META as META_FILE
from evdsearch.engine.rewriters.onnx_seq2seq import make_session

TEXT_ENCODERS = ("auto", "torch", "onnx", "onnx-int8")
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # CPU features that run int8 matrix products fast

_log = logging.getLogger(__name__)


class OnnxClipText:
    """The exported text tower on onnxruntime, tokenised with the checkpoint's own open_clip tokenizer."""

    def __init__(self, folder: str | Path, device: str = "auto", threads: int = 0, tokenizer: Any = None,
                 meta: dict[str, Any] | None = None, precision: str = "fp32") -> None:
        from evdsearch.errors import IncompatibleArtifact

        folder = Path(folder)
        self.folder = folder
        self.meta = meta or read_meta(folder)
        self.tokenizer = tokenizer or self._tokenizer_of(self.meta["clip"]["model"])
        self.precision = precision  # fp32 | int8: which graph runs, part of the embedding cache's key
        graph = folder / (TEXT_INT8_FILE if precision == "int8" else TEXT_FILE)
        if not graph.is_file():
            raise IncompatibleArtifact(f"no {graph.name} in {folder}")
        self.session = make_session(graph, device, threads)
        # exports made before true-length encoding take the full context only (77-token graph)
        self.dynamic_length = bool(self.meta.get("dynamic_length", False))

    @staticmethod
    def _tokenizer_of(model: str) -> Any:
        import open_clip

        from evdsearch.clip_models import register_model_configs

        register_model_configs()
        return open_clip.get_tokenizer(f"local-dir:{model}" if Path(model).is_dir() else model)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, as LoadedClip.encode_texts (true length when the export allows)."""
        from evdsearch.true_length import length_groups, token_lengths

        tokens = self.tokenizer(texts).numpy().astype(np.int64)
        if not self.dynamic_length or not len(tokens):
            return self.session.run(None, {"tokens": tokens})[0].astype(np.float32)
        lengths = token_lengths(tokens)
        out: np.ndarray | None = None
        for group in length_groups(lengths):  # similar lengths share one call
            part = self.session.run(None, {"tokens": tokens[group, : int(lengths[group].max())]})[0]
            if out is None:
                out = np.zeros((len(tokens), part.shape[1]), dtype=np.float32)
            out[group] = part
        assert out is not None
        return out


class ClipWithOnnxText:
    """A LoadedClip whose encode_texts runs on onnxruntime; every other attribute is the torch model's."""

    def __init__(self, clip: Any, text: OnnxClipText) -> None:
        self._clip = clip
        self.text_encoder = text
        self.text_precision = text.precision

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.text_encoder.encode_texts(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clip, name)


def read_meta(folder: Path) -> dict[str, Any]:
    """The export's clip_text.json; IncompatibleArtifact (one line) when the folder holds no usable export."""
    from evdsearch.errors import IncompatibleArtifact

    if not (folder / TEXT_FILE).is_file():
        raise IncompatibleArtifact(f"no {TEXT_FILE} in {folder}")
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        meta["clip"]["model"]  # noqa: B018  (the one field every reader needs)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IncompatibleArtifact(f"{folder / META_FILE} is missing or not an export's metadata ({err})") from err
    return meta


def with_text_encoder(clip: Any, choice: str = "auto", device: str = "auto", folder: str | None = None) -> Any:
    """The CLIP with the text encoder chosen in one place: onnx when an up-to-date export exists (auto) or
    is demanded (onnx), torch otherwise. A stale export (other weights) is never used. `folder` names the
    export explicitly (needed for a CLIP given as architecture + weights file; default CKPT/onnx)."""
    from evdsearch.errors import IncompatibleArtifact, InvalidInput

    if choice not in TEXT_ENCODERS:
        raise InvalidInput(f"text encoder must be one of {', '.join(TEXT_ENCODERS)}, not {choice!r}")
    if choice == "torch":
        return clip
    precision = "int8" if choice == "onnx-int8" else "fp32"
    if precision == "int8" and not cpu_runs_int8_fast():
        raise IncompatibleArtifact(f"--text-encoder onnx-int8 needs a CPU with one of {', '.join(INT8_CPU_FLAGS)} "
                                   "(int8 is slower than fp32 without them); use onnx")
    export = Path(folder) if folder else Path(clip.identity.model) / EXPORT_DIR
    try:
        meta = read_meta(export)
        if meta["clip"].get("fingerprint") != clip.identity.fingerprint:
            raise IncompatibleArtifact(f"the text export in {export} is stale (made from other weights)")
        return ClipWithOnnxText(clip, OnnxClipText(export, device, tokenizer=clip.tokenizer, meta=meta,
                                                   precision=precision))
    except IncompatibleArtifact as err:
        problem = f"{err}; make one with `evdsearch train export-onnx --clip {clip.identity.model}`"
    except ImportError as err:
        problem = f"onnxruntime is not installed ({err.name}); install the cpu or gpu extra"
    if choice != "auto":
        raise IncompatibleArtifact(problem)
    _log.info("text encoder: torch (%s)", problem)
    return clip


def cpu_runs_int8_fast() -> bool:
    """The CPU reports VNNI or AMX int8 instructions (Linux /proc/cpuinfo; elsewhere: assume not)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8").split()
    except OSError:
        return False
    return any(flag in flags for flag in INT8_CPU_FLAGS)
