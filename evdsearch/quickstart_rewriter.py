"""The quickstart's rewriter: the shipped PRO rewriter when it was trained for this CLIP, one trained here
(`--train-rewriter`: DEQR → SFT → PRO on the served knowledge base), or the template.

Stages call the public CLI verbs (as scripts/adaptive_fusion_world.sh does) and are skipped when their
output is there, so a second quickstart serves at once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evdsearch.artifacts import REWRITER_CLIP_PIN, REWRITER_META
from evdsearch.clip_models import CKPT_WEIGHTS, file_sha256

SHIPPED = Path(__file__).parent / "shipped" / "quickstart-rewriter"  # package data (pyproject)
Cli = Callable[[list[str]], int]


@dataclass
class RewriterRecipe:
    """The training recipe of the quickstart's rewriter (scripts/adaptive_fusion_world.sh's, on 2 threads)."""

    deqr_images: int = 6000  # training images whose entity captions make DEQR data
    sft_steps: int = 2000  # supervised steps on the best DEQR candidates
    pro_steps: int = 1200  # preference (PRO) steps on the DEQR rankings
    layers: int = 2  # scratch T5 encoder and decoder layers (about 1.4 M parameters, 6 MB)
    threads: int = 2  # torch threads while training


def pin_fingerprint(folder: Path) -> str | None:
    """The CLIP fingerprint a rewriter folder is pinned to, None when it has no pin."""
    try:
        return json.loads((folder / REWRITER_CLIP_PIN).read_text(encoding="utf-8"))["clip_fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def shipped_rewriter(clip: Path, kb_source: Path, say: Callable[[str], None] = print) -> Path | None:
    """The shipped rewriter when it is there and pinned to `clip`'s weights; else None and one line why."""
    pinned = pin_fingerprint(SHIPPED) if (SHIPPED / REWRITER_META).is_file() else None
    if pinned is None:
        say("[quickstart] no trained rewriter ships with this copy: serving the template rewriter "
            "(`evdsearch quickstart --train-rewriter` trains one, about 25 min on 2 cores)")
        return None
    fingerprint = file_sha256(clip / CKPT_WEIGHTS)
    if pinned != fingerprint:
        say(f"[quickstart] the shipped rewriter was trained for CLIP {pinned[:12]}…, this CLIP is "
            f"{fingerprint[:12]}…: serving the template rewriter (`--train-rewriter` trains one for this CLIP)")
        return None
    record = json.loads((SHIPPED / REWRITER_CLIP_PIN).read_text(encoding="utf-8"))
    if record.get("kb_source_sha256") not in (None, file_sha256(kb_source)):
        say(f"[quickstart] note: the shipped rewriter was trained on another knowledge base "
            f"({record.get('kb_source')}); it still serves, ensembled with the template rewriter and with fusion "
            f"weights calibrated on this one (`--train-rewriter`, or {record.get('remake')}, trains one for it)")
    else:
        say(f"[quickstart] the PRO rewriter shipped with evdsearch was trained for this CLIP and knowledge base "
            f"({record.get('kb_source')}): serving it, ensembled with the template rewriter")
    return SHIPPED


def install_shipped(workdir: Path) -> Path:
    """A writable copy of the shipped rewriter (the ONNX export goes beside it), refreshed when it changed."""
    target = workdir / "rewriter-shipped"
    if not (target / REWRITER_CLIP_PIN).is_file() or \
            (target / REWRITER_CLIP_PIN).read_bytes() != (SHIPPED / REWRITER_CLIP_PIN).read_bytes():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SHIPPED, target)
    return target


def train_rewriter(cli: Cli, workdir: Path, world: Path, clip: Path, kb_source: Path,
                   recipe: RewriterRecipe | None = None, stage: Callable[..., None] | None = None) -> Path:
    """DEQR → SFT → PRO in WORKDIR/rw on `kb_source`, each step skipped when done; returns the PRO folder."""
    recipe = recipe or RewriterRecipe()
    rw = workdir / "rw"
    run = stage or (lambda _name, done, action: None if done else action())

    def kb_train_only() -> int:  # DEQR's "both" regime reads which names CLIP does not know from a train-only fit
        shutil.rmtree(rw / "kb_t", ignore_errors=True)
        code = cli(["kb", "import", str(kb_source), "--kb", str(rw / "kb_t")]) or \
            cli(["kb", "calibrate", "--kb", str(rw / "kb_t"), "--data", str(world), "--model", str(clip),
                 "--splits", "train", "--device", "cpu"])
        if not code:
            (rw / "kb_t.calibrated").write_text(str(kb_source) + "\n")
        return code

    rw.mkdir(parents=True, exist_ok=True)
    run("knowledge base for DEQR (train-only weights)", (rw / "kb_t.calibrated").is_file(), kb_train_only)
    run("DEQR data (candidate rewrites ranked by CLIP)", (rw / "deqr" / "stats.json").is_file(),
        lambda: cli(["train", "deqr", "--data", str(world), "--kb", str(rw / "kb_t"), "--clip", str(clip),
                     "--out", str(rw / "deqr"), "--regime", "both", "--max-images", str(recipe.deqr_images),
                     "--device", "cpu", "--force"]))
    threads = ["--threads", str(recipe.threads), "--device", "cpu", "--force", "--max-minutes", "0"]
    run("SFT rewriter", (rw / "sft" / REWRITER_META).is_file(),
        lambda: cli(["train", "rewriter", "--deqr", str(rw / "deqr"), "--out", str(rw / "sft"), "--steps",
                     str(recipe.sft_steps), "--batch-size", "32", "--lr", "2e-3", "--warmup", "50", "--layers",
                     str(recipe.layers), *threads]))
    run("PRO rewriter", (rw / "pro" / REWRITER_META).is_file(),
        lambda: cli(["train", "rewriter-pro", "--deqr", str(rw / "deqr"), "--base", str(rw / "sft"), "--out",
                     str(rw / "pro"), "--steps", str(recipe.pro_steps), "--batch-size", "16", "--lr", "3e-4",
                     "--warmup", "30", *threads]))
    return rw / "pro"


def onnx_current(folder: Path) -> bool:
    """The folder holds a cached-decoder (format 2) ONNX export."""
    from evdsearch.artifacts import REWRITER_DECODER_PAST_FILE, REWRITER_ONNX_DIR, REWRITER_ONNX_META

    try:
        meta = json.loads((folder / REWRITER_ONNX_DIR / REWRITER_ONNX_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    weights = folder / "model.safetensors"
    return meta.get("format_version") == 2 and (folder / REWRITER_ONNX_DIR / REWRITER_DECODER_PAST_FILE).is_file() \
        and weights.is_file() and meta.get("weights_sha256") == file_sha256(weights)
