"""Indexing throughput: images/s of `evdsearch index` vs clip-retrieval's `clip-inference` on the same images."""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput


@dataclass
class IndexingBenchConfig:
    """What `evdsearch bench indexing` runs."""

    images: Path  # image folder (walked recursively), the same for both tools
    model: str  # open_clip architecture name (peer needs one) or our checkpoint folder
    pretrained: str | None = None  # local weights file (offline) or hub tag for `model`
    batch_size: int = 64  # images per forward pass, both tools
    workers: int = 0  # decoding threads (ours) / preprocessing processes (peer); 0 = min(8, CPUs)
    device: str = "auto"  # auto | cpu | cuda for our encoder; the peer picks cuda when torch sees one
    peer_venv: Path | None = None  # virtualenv holding clip-retrieval; None = do not run the peer
    work_dir: Path = Path("runs/bench/indexing/work")  # where both tools write their outputs
    peer_timeout_s: float = 1800.0  # the peer run is killed after this long


def _count_images(folder: Path) -> int:
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in exts)


def run_ours(cfg: IndexingBenchConfig) -> dict[str, Any]:
    """Our indexer end to end (decode, embed, FAISS Flat, write); model loading timed apart."""
    from evdsearch.clip_models import load_clip
    from evdsearch.indexer.build import IndexBuildConfig, build_index

    start = time.perf_counter()
    clip = load_clip(cfg.model, cfg.pretrained, cfg.device)
    load_s = time.perf_counter() - start
    report = build_index(IndexBuildConfig(source=cfg.images, out=cfg.work_dir / "evdsearch-index", model=cfg.model,
                                          pretrained=cfg.pretrained, batch_size=cfg.batch_size, device=cfg.device,
                                          workers=cfg.workers, force=True), clip=clip)
    wall = time.perf_counter() - start
    return {"tool": "evdsearch index", "status": "ok", "images": report.count, "skipped": len(report.skipped),
            "device": clip.device, "model_load_s": load_s, "work_s": report.seconds, "wall_s": wall,
            "images_per_s": report.count / report.seconds if report.seconds else 0.0,
            "images_per_s_wall": report.count / wall if wall else 0.0}


def peer_model_spec(model: str, pretrained: str | None) -> str:
    """clip-retrieval's model string for the same CLIP: `open_clip:ARCH/WEIGHTS`."""
    if Path(model).is_dir() or model.startswith("local-dir:"):
        raise InvalidInput("clip-retrieval loads open_clip models by architecture name (its open_clip < 3 has no "
                           "checkpoint folders): use --model ARCH --pretrained WEIGHTS_FILE for the comparison")
    if not pretrained:
        raise InvalidInput("the peer needs the same weights: give --pretrained (a local weights file offline)")
    return f"open_clip:{model}/{Path(pretrained).resolve() if Path(pretrained).is_file() else pretrained}"


def peer_command(cfg: IndexingBenchConfig, out: Path) -> list[str]:
    """The `clip-retrieval inference` command line used for the peer."""
    import os

    workers = cfg.workers or min(8, os.cpu_count() or 1)
    return [str(Path(cfg.peer_venv or "") / "bin" / "clip-retrieval"), "inference",
            "--input_dataset", str(cfg.images), "--output_folder", str(out), "--input_format", "files",
            "--clip_model", peer_model_spec(cfg.model, cfg.pretrained), "--batch_size", str(cfg.batch_size),
            "--num_prepro_workers", str(workers), "--enable_text", "False", "--enable_metadata", "False",
            "--use_jit", "False", "--enable_wandb", "False", "--output_partition_count", "1"]


def _count_peer_embeddings(out: Path) -> int:
    import numpy as np

    return sum(int(np.load(f, mmap_mode="r").shape[0]) for f in sorted((out / "img_emb").glob("*.npy")))


def _peer_stats(out: Path) -> dict[str, float]:
    """clip-inference's own per-partition timings (stats/*.json), summed: read, inference, total seconds."""
    import json

    totals: dict[str, float] = {}
    for path in sorted((out / "stats").glob("*.json")):
        for key, value in json.loads(path.read_text()).items():
            if key.endswith("_duration"):
                totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def run_peer(cfg: IndexingBenchConfig) -> dict[str, Any]:
    """clip-retrieval's inference on the same images and weights, in its own venv; a failure is recorded."""
    import shutil

    out = cfg.work_dir / "clip-retrieval-embeddings"
    shutil.rmtree(out, ignore_errors=True)
    try:
        cmd = peer_command(cfg, out)
    except InvalidInput as err:
        return {"tool": "clip-retrieval inference", "status": "not run", "error": str(err)}
    log = cfg.work_dir / "clip-retrieval-inference.log"
    result: dict[str, Any] = {"tool": "clip-retrieval inference", "command": shlex.join(cmd), "log": str(log)}
    if not Path(cmd[0]).is_file():
        return {**result, "status": "not run", "error": f"{cmd[0]} not found (pip install clip-retrieval "
                                                         f"into --peer-venv first)"}
    start = time.perf_counter()
    with log.open("w") as handle:
        try:
            proc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, timeout=cfg.peer_timeout_s)
        except subprocess.TimeoutExpired:
            return {**result, "status": "failed", "error": f"timed out after {cfg.peer_timeout_s:g} s"}
    wall = time.perf_counter() - start
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:])
    if proc.returncode != 0:
        return {**result, "status": "failed", "returncode": proc.returncode, "error": tail}
    count, stats = _count_peer_embeddings(out), _peer_stats(out)
    work = stats.get("total_duration", 0.0)  # reading + inference + writing, after model load and warm-up
    return {**result, "status": "ok", "images": count, "work_s": work, "wall_s": wall, "peer_stats": stats,
            "images_per_s": count / work if work else 0.0, "images_per_s_wall": count / wall if wall else 0.0,
            "log_tail": tail}


def run_indexing_bench(cfg: IndexingBenchConfig) -> dict[str, Any]:
    """Both tools on the same folder, one after the other (ours first), and the environment they ran in."""
    import os
    import platform

    if not Path(cfg.images).is_dir():
        raise InvalidInput(f"--images {cfg.images} is not a folder")
    count = _count_images(Path(cfg.images))
    if count == 0:
        raise InvalidInput(f"--images {cfg.images} holds no png/jpg/jpeg/bmp/webp files")
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    runs = [run_ours(cfg)]
    if cfg.peer_venv is not None:
        runs.append(run_peer(cfg))
    config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    return {"benchmark": "indexing", "config": config, "images_found": count,
            "environment": {"machine": platform.machine(), "cpus": os.cpu_count()}, "runs": runs}
