"""The DEQR build config and the on-disk format of its output folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

FORMAT = "evdsearch-deqr"  # stats.json "format"
FORMAT_VERSION = 1  # bump when record keys change; readers refuse other versions
RECORDS_FILE = "deqr.jsonl"  # one caption a line, candidates best first
STATS_FILE = "stats.json"  # format, version, config, counts


@dataclass
class DeqrConfig:
    """What `build_deqr` reads and how it ranks; the CLI fills it, stats.json records it."""

    data: str  # folder with one dataset_*.json (a shapes world) or the Karpathy JSON
    kb: str  # knowledge base folder (entity -> ranked descriptions), as the engine uses it
    clip: str  # retriever: CLIP checkpoint folder or open_clip name
    out: str  # output folder (deqr.jsonl + stats.json)
    images: str | None = None  # image root when it is not the JSON's folder
    split: str = "train"  # Karpathy split whose captions are rewritten
    max_images: int = 3000  # images (with entity captions) to use; bounds the run time
    max_candidates: int = 12  # candidates per caption, the empty rewrite included
    max_subset: int = 3  # most (entity, description) pairs one candidate uses
    max_descriptions: int = 3  # descriptions per entity handed over, as the engine's default
    batch_images: int = 128  # in-batch images a candidate is ranked among (own image + negatives)
    alpha: float = 0.5  # fusion weight used for scoring (engine default); 1.0 scores the rewrite alone
    mask_entities: bool = True  # score with entity names replaced by "object" (see build.py); False = unmasked
    regime: str = "masked"  # masked | unmasked | both (known names as written + made-up-name stand-ins; regimes.py)
    stand_in_share: float = 0.5  # regime both: share of captions whose entity names become made-up words
    seed: int = 0  # image order, batches and candidate sampling
    device: str = "auto"  # auto | cpu | cuda for the CLIP encoders
    force: bool = False  # replace an existing output folder

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
