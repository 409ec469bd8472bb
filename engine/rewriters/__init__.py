"""Query rewriters and their one factory: `create_rewriter("none" | "template" | MODEL_FOLDER)`."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from evdsearch.engine.rewriters.base import Evidence, Rewriter
from evdsearch.engine.rewriters.none import NoRewriter
from evdsearch.engine.rewriters.template import TemplateRewriter
from evdsearch.errors import InvalidInput

__all__ = ["Evidence", "Rewriter", "create_rewriter", "has_onnx_export"]

ONNX_MODULE = "evdsearch.engine.rewriters.onnx_seq2seq"  # optional runner: `load(folder, device) -> Rewriter`
_log = logging.getLogger(__name__)


def has_onnx_export(folder: Path) -> bool:
    """An ONNX export lies in the folder (or its onnx/ sub-folder)."""
    return any(folder.glob("*.onnx")) or any((folder / "onnx").glob("*.onnx"))


def _load_folder(folder: Path, device: str) -> Rewriter:
    """onnxruntime when an export and its runner are there, else transformers on torch."""
    if has_onnx_export(folder):
        try:
            runner = importlib.import_module(ONNX_MODULE)
        except ModuleNotFoundError as err:
            if err.name != ONNX_MODULE:
                raise
            _log.warning("%s has an ONNX export but no ONNX runner is installed; using torch", folder)
        else:
            return runner.load(folder, device)
    from evdsearch.engine.rewriters.seq2seq import Seq2SeqRewriter

    return Seq2SeqRewriter(folder, device=device)


def create_rewriter(spec: str, device: str = "auto") -> Rewriter:
    """`none` (query unchanged), `template` (EvdCLIP's naive baseline) or a seq2seq model folder."""
    if spec == "none":
        return NoRewriter()
    if spec == "template":
        return TemplateRewriter()
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return _load_folder(folder, device)
    raise InvalidInput(
        f"unknown rewriter {spec!r}: use 'none', 'template', or the folder of a trained seq2seq rewriter "
        f"(no folder {folder} exists)")
