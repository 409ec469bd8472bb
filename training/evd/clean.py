"""Split an LLM answer into short, self-contained description sentences."""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"[*_`#>]+")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+·]|\(?\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
# Openers that announce content instead of describing anything.
_FILLER = re.compile(
    r"^(?:sure|certainly|of course|great question|here (?:are|is)|when it comes to|there are (?:several|many|a few)|"
    r"i (?:hope|think|would)|let me|overall|in summary|in conclusion|to summari[sz]e|these (?:features|are)|"
    r"by (?:looking|paying)|if you (?:have|need|want))\b",
    re.IGNORECASE)
MIN_WORDS, MAX_WORDS = 4, 40


def split_descriptions(text: str, truncated: bool = False, min_words: int = MIN_WORDS) -> list[str]:
    """Short description sentences: markdown and list markers removed, filler and fragments dropped.

    `truncated` (the answer hit max_new_tokens) drops an unfinished last sentence. A list item
    "Red colour: it is bright" is kept whole (the heading often carries the attribute); a bare
    heading ("Colour:") is dropped; `min_words` is lower for prompts that ask for a short phrase.
    """
    pieces: list[str] = []
    for line in text.replace("\r", "").split("\n"):
        line = _LIST_MARKER.sub("", _MARKDOWN.sub("", line)).strip()
        if line:
            pieces.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    if truncated and pieces and not pieces[-1].endswith((".", "!", "?")):
        pieces.pop()
    out: list[str] = []
    for piece in pieces:
        sentence = _normalise(piece)
        n_words = len(sentence.split())
        if sentence.endswith(":") or _FILLER.match(sentence) or not min_words <= n_words <= MAX_WORDS:
            continue
        if description_key(sentence) not in {description_key(s) for s in out}:
            out.append(sentence)
    return out


def description_key(sentence: str) -> str:
    """What makes two descriptions the same: words only, lower case, without a short "Heading:" prefix."""
    head, sep, tail = sentence.partition(": ")
    if sep and len(head.split()) <= 3:
        sentence = tail
    return " ".join(re.findall(r"[a-z0-9]+", sentence.lower()))


def _normalise(sentence: str) -> str:
    sentence = " ".join(sentence.split())
    sentence = sentence[0].upper() + sentence[1:] if sentence else sentence
    if sentence and sentence[-1] not in ".!?:":
        sentence += "."
    return sentence
