"""Builders shared by the engine and gRPC tests: a tiny captioned index, a tiny KB, engines over them.

Plain functions (no fixtures) so each test module decides its fixture scope; the module holds no tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KB_RECORDS = [
    {"entity": "tomato", "description": "a red round fruit", "source": "encyclopedia", "score": 0.9},
    {"entity": "tomato", "description": "green leaves on top", "source": "encyclopedia", "score": 0.8},
    {"entity": "tomato", "description": "glossy skin", "source": "llm", "score": 0.7},
    {"entity": "tomato", "description": "grown in gardens", "source": "llm", "score": 0.1},
    {"entity": "School Bus", "description": "a long yellow vehicle", "source": "encyclopedia", "score": 0.9},
    {"entity": "school bus", "description": "black stripes along its side", "source": "llm", "score": 0.5},
    {"entity": "panda", "description": "a black and white bear", "source": "encyclopedia", "score": 0.9},
    {"entity": "red panda", "description": "a small red-brown mammal", "source": "encyclopedia", "score": 0.9},
]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "cyan", "pink", "brown", "gray"]


def write_images(folder: Path) -> Path:
    """Twelve 64x64 images (one colour each, a square in a second colour) and a Karpathy JSON with captions."""
    from PIL import Image, ImageDraw

    (folder / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, color in enumerate(COLORS):
        image = Image.new("RGB", (64, 64), color)
        ImageDraw.Draw(image).rectangle([8 + i, 8, 40, 40 + i], fill=COLORS[(i + 3) % len(COLORS)])
        name = f"{i:03d}.png"
        image.save(folder / "images" / name)
        entries.append({"filename": name, "filepath": "images", "split": "test", "imgid": i,
                        "sentences": [{"raw": f"a {color} picture number {i}"}]})
    path = folder / "dataset_tiny.json"
    path.write_text(json.dumps({"dataset": "tiny", "images": entries}), encoding="utf-8")
    return path


def write_noise_images(folder: Path, n: int, seed: int, prefix: str = "") -> Path:
    """`n` seeded 20x20 noise PNGs, PREFIX000.png on: content differs per seed, so builds can be told apart."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{prefix}{i:03d}.png")
    return folder


def build_index(folder: Path, clip_dir: Path, factory: str = "Flat") -> Path:
    """An index of the twelve images, built by the real indexer with the tiny CLIP."""
    from evdsearch.indexer.build import IndexBuildConfig
    from evdsearch.indexer.build import build_index as run_build

    source = write_images(folder / "data")
    out = folder / "index"
    run_build(IndexBuildConfig(source=source, out=out, model=str(clip_dir), factory=factory, device="cpu",
                               workers=1, progress=False))
    return out


def build_metadata_index(folder: Path, clip_dir: Path, factory: str = "Flat") -> Path:
    """The twelve images indexed with a sidecar: color (str, the image's colour) and rank (int, its number)."""
    from evdsearch.indexer.build import IndexBuildConfig
    from evdsearch.indexer.build import build_index as run_build

    source = write_images(folder / "data")
    sidecar = folder / "meta.jsonl"
    sidecar.write_text("".join(json.dumps({"path": f"images/{i:03d}.png", "color": c, "rank": i}) + "\n"
                               for i, c in enumerate(COLORS)), encoding="utf-8")
    out = folder / "index"
    run_build(IndexBuildConfig(source=source, out=out, model=str(clip_dir), factory=factory, device="cpu",
                               workers=1, progress=False, metadata=sidecar))
    return out


def build_parts(root: Path, clip_dir: Path) -> tuple[Path, Path]:
    """(index folder of twelve captioned PNGs, KB folder with tomato / school bus / panda / red panda)."""
    return build_index(root, clip_dir), build_kb(root / "kb")


def build_kb(folder: Path) -> Path:
    """A knowledge base holding KB_RECORDS."""
    from evdsearch.indexer.kb import KnowledgeBase

    with KnowledgeBase.open(folder, readonly=False) as kb:
        kb.import_records(KB_RECORDS)
    return folder


def open_engine(index_dir: Path, kb_dir: Path | None, rewriter: str = "template", **overrides):
    """A SearchEngine on CPU over the tiny index and KB."""
    from evdsearch.engine.api import EngineConfig
    from evdsearch.engine.search import SearchEngine

    config = EngineConfig(index_dir=str(index_dir), kb_dir=str(kb_dir) if kb_dir else None, rewriter=rewriter,
                          device="cpu", **overrides)
    return SearchEngine.open(config)


@contextmanager
def serving(engine: Any, **options: Any) -> Iterator[Any]:
    """`engine` behind a started loopback gRPC server (`build_server` options), stopped without grace on exit."""
    from evdsearch.engine.grpc_server.server import build_server

    running = build_server(engine, port=0, **options)
    running.start()
    try:
        yield running
    finally:
        running.stop(0)


def png_bytes(color: str = "red") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    return buffer.getvalue()
