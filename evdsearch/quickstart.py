"""`evdsearch quickstart`: the main job on the embedded default, each stage skipped when already done.

shapes world → tiny CLIP → knowledge base (`--kb-source`: the shipped LLM descriptions, the world's
encyclopedia or a JSONL) → the trained PRO rewriter (shipped for this CLIP, or `--train-rewriter`) → fusion
weights calibrated with it → index of the test images → gRPC. Stages call the public CLI verbs, so the quickstart exercises what users run by hand.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evdsearch.errors import UserError
from evdsearch.versioned import current_version

LLM_DESCRIPTIONS = "qwen2.5-1.5b.jsonl"  # made by docs/knowledge-base.md's commands; provenance on every line
KB_SOURCES = ("llm", "encyclopedia")  # --kb-source keywords; any other value is a JSONL path


@dataclass
class QuickstartLayout:
    """Where each artefact of the quickstart lives below the work directory."""

    workdir: Path  # root of all artefacts (default runs/quickstart)

    @property
    def world(self) -> Path:
        return self.workdir / "world"

    @property
    def clip(self) -> Path:
        return self.workdir / "clip"

    @property
    def kb(self) -> Path:
        return self.workdir / "kb"

    @property
    def index(self) -> Path:
        return self.workdir / "index"

    @property
    def kb_source(self) -> Path:
        """Names the source the KB was imported from (llm | encyclopedia | a file and its hash); another source
        rebuilds the KB."""
        return self.workdir / "kb.source"

    @property
    def calibrated(self) -> Path:
        """Written once `kb calibrate` has filled the KB's fusion weights (removed when the KB is re-imported)."""
        return self.workdir / "kb.calibrated"


def _stage(name: str, done: bool, action: Callable[[], int | None]) -> None:
    if done:
        print(f"[quickstart] {name}: already there, reusing it")
        return
    print(f"[quickstart] {name} ...", flush=True)
    start = time.perf_counter()
    code = action()
    if code:
        raise UserError(f"quickstart stage '{name}' failed (exit code {code})")
    print(f"[quickstart] {name}: done in {time.perf_counter() - start:.1f}s", flush=True)


def _can_export_onnx() -> bool:
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def shipped_descriptions() -> Path:
    """The shapes world's entities described by an LLM (`evd generate` + `evd select`), shipped with the
    package with their provenance: what a user would build for their own images, not the world's oracle."""
    from importlib.resources import files

    return Path(str(files("evdsearch.training.shapes_world") / "evds" / LLM_DESCRIPTIONS))


def kb_source_file(layout: QuickstartLayout, source: str) -> Path:
    """The JSONL the quickstart imports: the shipped LLM descriptions (llm), the world's own encyclopedia, or
    the user's file (any other value is a path)."""
    if source in KB_SOURCES:
        return layout.world / "encyclopedia.jsonl" if source == "encyclopedia" else shipped_descriptions()
    path = Path(source)
    if not path.is_file():
        raise UserError(f"--kb-source {source}: no such file (llm, encyclopedia or a JSONL of entity descriptions)")
    return path


def _source_record(layout: QuickstartLayout, source: str) -> str:
    """What kb.source holds: the keyword, or a file's absolute path and content hash (an edit re-imports)."""
    if source in KB_SOURCES:
        return source
    from evdsearch.clip_models import file_sha256

    path = kb_source_file(layout, source)
    return f"{path.resolve()} sha256={file_sha256(path)}"


def _import_kb(cli: Callable[[list[str]], int], layout: QuickstartLayout, source: str) -> int:
    import shutil

    from evdsearch.atomic import write_text_atomic

    layout.calibrated.unlink(missing_ok=True)  # a new KB holds no weights yet
    shutil.rmtree(layout.kb, ignore_errors=True)  # the quickstart's own KB, from another source: rebuilt whole
    code = cli(["kb", "import", str(kb_source_file(layout, source)), "--kb", str(layout.kb)])
    if not code:
        write_text_atomic(layout.kb_source, _source_record(layout, source) + "\n")
    return code


def _kb_imported(layout: QuickstartLayout, source: str) -> bool:
    """The KB is there and came from `source` (a KB of an older quickstart, with no record, is the encyclopedia)."""
    if not (current_version(layout.kb) / "data.mdb").is_file():
        return False
    recorded = layout.kb_source.read_text(encoding="utf-8").strip() if layout.kb_source.is_file() else "encyclopedia"
    return recorded == _source_record(layout, source)


def _calibration_record(rewriter: str) -> str:
    return f"evdsearch kb calibrate --splits train,val --rewriter {rewriter}\n"


def _calibrate(cli: Callable[[list[str]], int], layout: QuickstartLayout, rewriter: str) -> int:
    """`kb calibrate` on the world's train and val captions, encoded as the server will (with its rewriter), so
    the server fuses adaptively by default."""
    from evdsearch.atomic import write_text_atomic

    code = cli(["kb", "calibrate", "--kb", str(layout.kb), "--data", str(layout.world), "--model", str(layout.clip),
                "--rewriter", rewriter])
    if not code:
        write_text_atomic(layout.calibrated, _calibration_record(rewriter))
    return code


def _calibrated_with(layout: QuickstartLayout, rewriter: str) -> bool:
    try:
        return layout.calibrated.read_text(encoding="utf-8") == _calibration_record(rewriter)
    except OSError:
        return False


def _choose_rewriter(args: argparse.Namespace, cli: Callable[[list[str]], int], layout: QuickstartLayout,
                     kb_source: Path) -> str:
    """--rewriter PATH|template|none as given; --train-rewriter or the shipped one (auto), ONNX-exported."""
    from evdsearch import quickstart_rewriter as qr

    if args.train_rewriter:
        folder = qr.train_rewriter(cli, layout.workdir, layout.world, layout.clip, kb_source, stage=_stage)
    elif args.rewriter != "auto":
        return args.rewriter
    else:
        shipped = qr.shipped_rewriter(layout.clip, kb_source)
        if shipped is None:
            return "template"
        folder = qr.install_shipped(layout.workdir)
    if _can_export_onnx():
        _stage("export the rewriter to ONNX (cached decoder)", qr.onnx_current(folder),
               lambda: cli(["train", "export-onnx", "--rewriter", str(folder)]))
    return str(folder)


def run_quickstart(args: argparse.Namespace) -> int:
    from evdsearch.cli import main as cli

    layout = QuickstartLayout(Path(args.workdir))
    layout.workdir.mkdir(parents=True, exist_ok=True)
    world_args = ["world", "make", "--out", str(layout.world), "--seed", str(args.seed)]
    if args.small:
        world_args += ["--n-train", "2000", "--n-val", "200", "--n-test", "300"]
    _stage("build the shapes world", (layout.world / "world.json").is_file(), lambda: cli(world_args))
    clip_args = ["train", "clip", "--data", str(layout.world), "--model", "evd-tiny", "--out", str(layout.clip),
                 "--seed", str(args.seed), "--resume"]
    if args.steps:
        clip_args += ["--steps", str(args.steps)]
    _stage("train the tiny CLIP", (layout.clip / "open_clip_config.json").is_file(), lambda: cli(clip_args))
    if _can_export_onnx():
        from evdsearch.artifacts import CLIP_ONNX_DIR as EXPORT_DIR

        _stage("export the CLIP text tower to ONNX (the server's fast text encoder)",
               _text_export_current(layout.clip / EXPORT_DIR),
               lambda: cli(["train", "export-onnx", "--clip", str(layout.clip)]))
    else:
        print("[quickstart] no onnx/onnxruntime installed: the server encodes text with torch (slower)")
    kb_source = kb_source_file(layout, args.kb_source)
    what = {"llm": f"the LLM-written descriptions ({LLM_DESCRIPTIONS})",
            "encyclopedia": "the world's encyclopedia (the test oracle)"}.get(args.kb_source, str(kb_source))
    _stage(f"import {what} into the knowledge base", _kb_imported(layout, args.kb_source),
           lambda: _import_kb(cli, layout, args.kb_source))
    rewriter = _choose_rewriter(args, cli, layout, kb_source)
    _stage(f"calibrate per-entity fusion weights (adaptive fusion, rewriter {Path(rewriter).name})",
           _calibrated_with(layout, rewriter), lambda: _calibrate(cli, layout, rewriter))
    _stage("index the test images", (current_version(layout.index) / "manifest.json").is_file(),
           lambda: cli(["index", str(layout.world / "dataset_shapes.json"), "--split", "test",
                        "--out", str(layout.index), "--model", str(layout.clip)]))
    if args.no_serve:
        print(f"[quickstart] ready; serve it with: evdsearch serve --index {layout.index} --kb {layout.kb} "
              f"--rewriter {rewriter}")
        return 0
    return cli(["serve", "--index", str(layout.index), "--kb", str(layout.kb), "--rewriter", rewriter,
                "--host", args.host, "--port", str(args.port)])


def _text_export_current(folder: Path) -> bool:
    """An export with a true-length (dynamic sequence) record; older 77-token exports still run but are redone."""
    import json

    from evdsearch.artifacts import CLIP_TEXT_FILE, CLIP_TEXT_META

    try:
        meta = json.loads((folder / CLIP_TEXT_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (folder / CLIP_TEXT_FILE).is_file() and isinstance(meta, dict) and "dynamic_length" in meta


def register(tree) -> None:
    parser = tree.add(None, "quickstart", help="build the shapes world, its tiny CLIP, KB and index, then serve gRPC")
    parser.add_argument("--workdir", default="runs/quickstart", help="where artefacts go (reused when present)")
    parser.add_argument("--seed", type=int, default=0, help="world and training seed")
    parser.add_argument("--steps", type=int, default=0, help="CLIP training steps (0: the trainer's default)")
    parser.add_argument("--small", action="store_true", help="a smaller world, for a fast try-out")
    parser.add_argument("--rewriter", default="auto",
                        help="auto (default): the PRO rewriter shipped with evdsearch when it was trained for this "
                             "CLIP (its clip_pin.json names the CLIP and the KB it was trained on; on another KB it "
                             "still serves, ensembled with the template, and says so), else the template; none, "
                             "template, or a trained rewriter folder")
    parser.add_argument("--train-rewriter", action="store_true",
                        help="train the PRO rewriter here (DEQR, SFT, PRO on the imported KB; about 25 min on "
                             "2 cores) and serve it")
    parser.add_argument("--kb-source", default="llm", metavar="llm|encyclopedia|JSONL",
                        help="llm (default): the shipped LLM-written descriptions of the world's entities; "
                             "encyclopedia: the world generator's own text (an oracle no user has); or a JSONL "
                             "of your own. Another source than the last one re-imports and recalibrates")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=50051, help="gRPC port")
    parser.add_argument("--no-serve", action="store_true", help="build everything, then exit without serving")
    parser.set_defaults(run=run_quickstart)
