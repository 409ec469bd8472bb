"""Entities to describe: read from a list file, or extracted from captions by the LLM (parsed robustly)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from evdsearch.errors import InvalidInput, NotFound

_ARTICLES = {"a", "an", "the", "some", "one", "two", "three", "several", "many"}
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+·]|\(?\d{1,3}[.):]|\(?[a-z][.)])\s+", re.IGNORECASE)
_PREAMBLE = re.compile(
    r"^(?:sure|here|the (?:visual )?entities|visual entities|entities|objects|answer|output|caption)\b[^:]*:\s*",
    re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\n)\s*")
_NOT_ENTITY = {"none", "n/a", "nothing", "no entities", "entities", "entity", "caption", "image", "photo",
               "picture", "scene"}


def load_entity_file(path: str | Path) -> list[str]:
    """Entity names from a shapes-world entities.json, a JSON list of names, or a text file (one a line)."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"entity list not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
            names = [item["name"] if isinstance(item, dict) else str(item) for item in data]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise InvalidInput(f"{path}: expected a JSON list of names or of {{'name': ...}} objects ({err})") from err
    else:
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    unique = list(dict.fromkeys(" ".join(n.split()) for n in names if n and n.strip()))
    if not unique:
        raise InvalidInput(f"{path} lists no entities")
    return unique


def parse_entity_list(text: str, caption: str | None = None, max_words: int = 4) -> list[str]:
    """Entity noun phrases from an LLM answer: numbered / bulleted / comma lists, JSON arrays, preambles.

    With `caption`, keeps only phrases whose words all occur in it (drops hallucinated entities).
    """
    items = _json_items(text)
    if items is None:
        items = []
        for line in text.splitlines():
            line = _PREAMBLE.sub("", _LIST_MARKER.sub("", line.strip()))
            items.extend(_SPLIT.split(line))
    caption_words = set(_words(caption)) if caption is not None else None
    found: list[str] = []
    for item in items:
        phrase = _clean_phrase(item)
        words = phrase.split()
        if not words or len(words) > max_words or phrase in _NOT_ENTITY:
            continue
        if caption_words is not None and not all(_in_caption(w, caption_words) for w in words):
            continue
        if phrase not in found:
            found.append(phrase)
    return found


def _json_items(text: str) -> list[str] | None:
    match = re.search(r"\[[^\[\]]*\]", text)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return [str(x) for x in data] if isinstance(data, list) else None


def _clean_phrase(item: str) -> str:
    item = re.sub(r"[*_`\"“”‘’]", "", item).strip().lower()
    item = re.sub(r"\s*\(.*?\)\s*", " ", item)  # "(a person)" explanations
    item = item.split(" - ")[0].split(": ")[0]  # "dog - an animal", "dog: an animal"
    item = re.sub(r"[^a-z0-9' -]", " ", item).strip(" -'")
    words = item.split()
    while words and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _in_caption(word: str, caption_words: set[str]) -> bool:
    stems = {word, word.rstrip("s"), word + "s", word + "es", re.sub(r"ies$", "y", word)}
    return bool(stems & caption_words) or any(w.rstrip("s") == word.rstrip("s") for w in caption_words)
