"""The CLIP text export some benchmarks time, made by the public verb in a child process (benchmarks do not
import training: `evdsearch train export-onnx --clip ...`, exactly what users run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def export_text_tower(model: str, out: str | Path, pretrained: str | None = None, check: bool = True) -> Path:
    """Export `model`'s text tower to `out` (clip_text.onnx + meta); raises UserError when the verb fails."""
    from evdsearch.errors import UserError

    argv = [sys.executable, "-m", "evdsearch", "train", "export-onnx", "--clip", str(model), "--clip-out", str(out),
            *(["--clip-pretrained", pretrained] if pretrained else []), *([] if check else ["--no-check"])]
    if subprocess.run(argv).returncode != 0:
        raise UserError(f"exporting the text tower of {model} failed")
    return Path(out)
