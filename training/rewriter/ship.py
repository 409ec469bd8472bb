"""Ship a trained rewriter with the package: its torch weights and tokenizer, pinned to the CLIP it was trained for.

    python -m evdsearch.training.rewriter.ship REWRITER_DIR OUT --clip CLIP_CKPT --kb-source KB_JSONL

The ONNX export is not shipped (it is made again where the rewriter is used, in a second), so the
folder stays a few MB. `clip_pin.json` records the CLIP's fingerprint (`serve` refuses the folder on any
other CLIP), the SHA-256 of the knowledge-base file its DEQR data was built from, and the command that
remakes it (scripts/quickstart_rewriter.sh).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from evdsearch.artifacts import REWRITER_CLIP_PIN, REWRITER_META
from evdsearch.atomic import write_json_atomic
from evdsearch.clip_models import CKPT_WEIGHTS, file_sha256
from evdsearch.errors import NotFound

SHIPPED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
           "special_tokens_map.json", REWRITER_META)  # what transformers and `serve` need; no ONNX, no run logs
REMAKE = "scripts/quickstart_rewriter.sh KB evdsearch/shipped/quickstart-rewriter"


def ship_rewriter(rewriter: str | Path, out: str | Path, clip: str | Path, kb_source: str | Path,
                  clip_label: str = "the quickstart's evd-tiny CLIP, seed 0") -> Path:
    """Copy the rewriter's shippable files into `out` (replaced) and pin it to `clip`'s weights."""
    rewriter, out, clip, kb_source = Path(rewriter), Path(out), Path(clip), Path(kb_source)
    for needed in (rewriter / "config.json", rewriter / "model.safetensors", clip / CKPT_WEIGHTS, kb_source):
        if not needed.is_file():
            raise NotFound(f"cannot ship the rewriter: {needed} does not exist")
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in SHIPPED:
        if (rewriter / name).is_file():
            shutil.copy2(rewriter / name, staging / name)
    write_json_atomic(staging / REWRITER_CLIP_PIN, {
        "clip_fingerprint": file_sha256(clip / CKPT_WEIGHTS), "clip": clip_label,
        "kb_source_sha256": file_sha256(kb_source), "kb_source": kb_source.name, "remake": REMAKE})
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evdsearch.training.rewriter.ship", description=__doc__.split("\n")[0])
    p.add_argument("rewriter", help="trained rewriter folder (`evdsearch train rewriter-pro`)")
    p.add_argument("out", help="folder to write (replaced), e.g. evdsearch/shipped/quickstart-rewriter")
    p.add_argument("--clip", required=True, help="the CLIP checkpoint folder the rewriter was trained with")
    p.add_argument("--kb-source", required=True, help="the knowledge-base JSONL its DEQR data was built from")
    args = p.parse_args(argv)
    out = ship_rewriter(args.rewriter, args.out, args.clip, args.kb_source)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"shipped rewriter: {out} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
