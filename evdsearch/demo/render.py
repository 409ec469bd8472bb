"""The search API's JSON turned into what the page shows: captioned thumbnails, entity spans, tables, notes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from evdsearch.search_api import TIMING_STAGES

THUMBNAIL_PX = 320  # longest side of a gallery image
MODE_TITLES = {"fused": "Fused: original + rewritten", "rewritten": "Rewritten query only",
               "original": "Original query (chosen mode)"}


@lru_cache(maxsize=128)  # ~40 MB of 320 px RGB thumbnails
def thumbnail(uri: str) -> Any:
    """The image at `uri` scaled down, or a grey placeholder when it is not readable on this machine."""
    from PIL import Image, ImageDraw

    try:
        with Image.open(Path(uri)) as image:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            return image.convert("RGB")
    except (OSError, ValueError):
        placeholder = Image.new("RGB", (THUMBNAIL_PX, THUMBNAIL_PX), (200, 200, 200))
        ImageDraw.Draw(placeholder).text((12, THUMBNAIL_PX // 2 - 6), "image not on this machine", fill=(60, 60, 60))
        return placeholder


def image_available(uri: str) -> bool:
    return Path(uri).is_file()


def hit_caption(hit: dict[str, Any], mode: str, was: int | None = None) -> str:
    """Rank and score, the other scores, then the stored caption; `was` is the hit's rank in the original ranking."""
    if mode == "original":
        lead, others = f"#{hit['rank']} orig {hit['original_score']:.3f}", f"rew {hit['rewritten_score']:.3f}"
    else:
        moved = "" if was is None else (" (new)" if was == 0 else f" (orig #{was})")
        lead = f"#{hit['rank']} {mode} {hit['score']:.3f}{moved}"
        others = f"orig {hit['original_score']:.3f} · rew {hit['rewritten_score']:.3f}"
    return "\n".join([lead, others] + hit["captions"][:1])


def gallery_items(hits: list[dict[str, Any]], mode: str,
                  original_hits: list[dict[str, Any]] | None = None) -> list[tuple[Any, str]]:
    """(thumbnail, caption) per hit; with `original_hits`, captions say where each hit ranked originally."""
    was = {h["id"]: h["rank"] for h in original_hits} if original_hits is not None else {}
    return [(thumbnail(hit["uri"]), hit_caption(hit, mode, was.get(hit["id"], 0) if was else None))
            for hit in hits]


def entity_spans(text: str | None, entities: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The query cut into plain pieces and entity mentions labelled with their KB entity."""
    if not text:
        return [("image query: nothing to rewrite", None)]
    pieces, at = [], 0
    for mention in sorted(entities, key=lambda m: m["start"]):
        if mention["start"] < at:
            continue  # overlapping spans cannot be highlighted twice
        if mention["start"] > at:
            pieces.append((text[at:mention["start"]], None))
        pieces.append((text[mention["start"]:mention["end"]], mention["entity"]))
        at = mention["end"]
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def description_rows(explanation: dict[str, Any]) -> list[list[Any]]:
    """[entity, description, source, score] for every description the rewriter was given."""
    return [[entity, d["text"], d["source"], round(d["score"], 3)]
            for entity, found in explanation["descriptions"].items() for d in found]


def summary_markdown(result: dict[str, Any]) -> str:
    """Which entities were found, the stage timings, and how the right-hand ranking was scored."""
    ex, query = result["explanation"], result["query"]
    if query["image"]:
        found = "Image query: searched with its image embedding (no entities, no rewriting)."
    elif ex["entities"]:
        names = ", ".join(dict.fromkeys(m["entity"] for m in ex["entities"]))
        found = f"**Entities found:** {names}."
        if ex.get("rewrite_variants"):
            found += " q' averages the rewrite with the template's: " + "; ".join(
                f"*{v}*" for v in ex["rewrite_variants"])
    else:
        found = "**No knowledge-base entity found**: the rewritten query is the query itself."
    stages = [s for s in TIMING_STAGES if s in ex["timings_ms"]]
    timings = " · ".join(f"{s} {ex['timings_ms'][s]:.1f} ms" for s in stages)
    total = sum(ex["timings_ms"][s] for s in stages)
    return f"{found}  \n**Timings:** {timings} (total {total:.1f} ms)" if stages else found


def ranking_label(mode: str, alpha: float | None) -> str:
    if mode == "fused" and alpha is not None:
        return f"{MODE_TITLES['fused']} (alpha {alpha:.2f})"
    return MODE_TITLES.get(mode, mode)
