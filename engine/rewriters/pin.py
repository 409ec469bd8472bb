"""A rewriter pinned to one CLIP: a shipped rewriter folder names the CLIP fingerprint it was trained for.

A rewriter learns which rewrites the CLIP it was trained with ranks well; on another CLIP its rewrites are
not what that CLIP needs. Folders with a `clip_pin.json` (the quickstart's shipped rewriter) are refused on
any other CLIP; folders without one (trained by hand) load with any CLIP, as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evdsearch.artifacts import REWRITER_CLIP_PIN as PIN_FILE
from evdsearch.errors import IncompatibleArtifact


def read_pin(folder: str | Path) -> dict[str, Any] | None:
    """The folder's pin record, None when it has none."""
    path = Path(folder) / PIN_FILE
    if not path.is_file():
        return None
    try:
        pin = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise IncompatibleArtifact(f"{path} is not valid JSON ({err})") from err
    if not isinstance(pin, dict) or not isinstance(pin.get("clip_fingerprint"), str):
        raise IncompatibleArtifact(f"{path} names no clip_fingerprint")
    return pin


def check_pin(folder: str | Path, clip_fingerprint: str) -> None:
    """IncompatibleArtifact in one line when `folder` is pinned to another CLIP than `clip_fingerprint`."""
    pin = read_pin(folder)
    if pin is None or pin["clip_fingerprint"] == clip_fingerprint:
        return
    remake = pin.get("remake", "scripts/quickstart_rewriter.sh KB OUT")
    raise IncompatibleArtifact(
        f"rewriter {folder} was trained for CLIP {pin['clip_fingerprint'][:12]}… ({pin.get('clip', 'its CLIP')}), "
        f"not this CLIP {clip_fingerprint[:12]}…: use --rewriter template, or train one for this CLIP ({remake})")
