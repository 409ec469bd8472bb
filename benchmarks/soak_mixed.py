"""The mixed soak's writer: `index add`, `index delete`, `kb import`, `kb calibrate`, each followed by a reload,
in a loop while the clients search; every write runs the real CLI in its own process, as an operator would."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput

Reload = Callable[[], str | None]  # reloads the server; None when it worked, else why not


@dataclass
class MixedConfig:
    """What the writer changes, and how often."""

    index: Path  # the served index folder: `index add` / `index delete` publish new versions of it
    kb: Path  # the served KB folder: `kb import` / `kb calibrate` publish new versions of it
    images: Path  # a folder of images added by `index add` and deleted again (by URI) each cycle
    calibrate_data: str | None = None  # `kb calibrate --data` (shapes world or Karpathy JSON); None: no calibration
    calibrate_model: str | None = None  # `kb calibrate --model` (the CLIP the index uses)
    calibrate_every: int = 3  # cycles between calibrations (1: every cycle)
    pause_s: float = 5.0  # seconds between one write + reload and the next
    op_timeout_s: float = 1800.0  # a write that runs longer counts as failed


class MixedWriter:
    """One thread cycling through the writes until the soak ends; `report()` sums them up per kind."""

    def __init__(self, cfg: MixedConfig, reload: Reload) -> None:
        from evdsearch.indexer.sources import collect_images

        for path, flag in ((cfg.index, "--index"), (cfg.kb, "--kb"), (cfg.images, "--add-images")):
            if not Path(path).exists():
                raise InvalidInput(f"{flag} {path} does not exist")
        if (cfg.calibrate_data is None) != (cfg.calibrate_model is None):
            raise InvalidInput("--calibrate-data and --calibrate-model go together")
        self.cfg, self.reload = cfg, reload
        self.uris = [r.uri for r in collect_images(cfg.images, None, None).records]  # what `index delete` removes
        self.ops: dict[str, dict[str, Any]] = {}
        self.cycles = 0
        self._thread: threading.Thread | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="evdsearch-soak-")

    def start(self, stop_at: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(stop_at,), daemon=True, name="soak-writer")
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(self.cfg.op_timeout_s + 60)

    def _run(self, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            for name, argv in self._cycle():
                if time.monotonic() >= stop_at:
                    return
                self._record(name, lambda a=argv: _evdsearch(a, self.cfg.op_timeout_s))
                self._record("reload", self.reload)
                time.sleep(min(self.cfg.pause_s, max(0.0, stop_at - time.monotonic())))
            self.cycles += 1

    def _cycle(self) -> list[tuple[str, list[str]]]:
        cfg, n = self.cfg, self.cycles
        record = Path(self._scratch.name) / f"soak-{n}.jsonl"
        record.write_text(json.dumps({"entity": "soak probe", "description": f"soak description {n}",
                                      "source": "soak", "score": 0.5}) + "\n", encoding="utf-8")
        steps = [("index add", ["index", "add", str(cfg.images), "--out", str(cfg.index), "--no-progress",
                                "--device", "cpu"]),
                 ("index delete", ["index", "delete", "--out", str(cfg.index), "--uris", *self.uris]),
                 ("kb import", ["kb", "import", str(record), "--kb", str(cfg.kb)])]
        if cfg.calibrate_data and n % max(1, cfg.calibrate_every) == 0:
            steps.append(("kb calibrate", ["kb", "calibrate", "--kb", str(cfg.kb), "--data", cfg.calibrate_data,
                                           "--model", str(cfg.calibrate_model), "--device", "cpu",
                                           "--max-captions", "5"]))
        return steps

    def _record(self, name: str, action: Callable[[], str | None]) -> None:
        start = time.monotonic()
        problem = action()
        seconds = time.monotonic() - start
        op = self.ops.setdefault(name, {"runs": 0, "failed": 0, "total_s": 0.0, "max_s": 0.0, "last_error": None})
        op["runs"] += 1
        op["total_s"] += seconds
        op["max_s"] = max(op["max_s"], seconds)
        if problem is not None:
            op["failed"] += 1
            op["last_error"] = problem

    def report(self) -> dict[str, Any]:
        ops = {name: {**op, "mean_s": op["total_s"] / op["runs"]} for name, op in self.ops.items()}
        self._scratch.cleanup()
        return {"cycles": self.cycles, "ops": ops, "failed": sum(op["failed"] for op in ops.values())}


def _evdsearch(argv: list[str], timeout_s: float) -> str | None:
    """Run `evdsearch ARGV` in its own process; None when it exits 0, else its last stderr line."""
    try:
        done = subprocess.run([sys.executable, "-m", "evdsearch", *argv], capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:g} s"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return f"exit {done.returncode}: {lines[-1] if lines else '(no message)'}"
