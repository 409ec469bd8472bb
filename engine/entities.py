"""Entity extraction: longest matches of knowledge-base entity names in a query, with character spans."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from evdsearch.search_api import EntityMention

_WORD_RE = re.compile(r"\S+")  # whitespace-separated words; normalisation strips their punctuation


def _default_normalizer() -> Callable[[str], str]:
    from evdsearch.indexer.kb import normalize_entity  # lmdb-backed module, imported only when needed

    return normalize_entity


class EntityMatcher:
    """Finds entity names in text, word by word, after the knowledge base's own normalisation.

    Both the names and the query go through `normalize` one word at a time, so plurals
    ("school buses"), case and punctuation ("Tomato,") match the way the knowledge base keys them.
    At each word the longest name starting there wins ("red panda" over "panda"); matches do not overlap.
    """

    def __init__(self, names: Iterable[str], normalize: Callable[[str], str] | None = None) -> None:
        self._normalize = normalize or _default_normalizer()
        self._names: dict[tuple[str, ...], str] = {}
        for name in names:
            key = self._key(name)
            if key:
                self._names.setdefault(key, name)  # first listed spelling wins
        self._longest = max((len(key) for key in self._names), default=0)

    def __len__(self) -> int:
        return len(self._names)

    def _key(self, text: str) -> tuple[str, ...]:
        return tuple(part for word in text.split() for part in self._normalize(word).split())

    def _words(self, query: str) -> list[tuple[tuple[str, ...], int, int]]:
        """(normalised parts, start, end) per word; parts may be empty for pure punctuation."""
        words = []
        for match in _WORD_RE.finditer(query):
            parts = tuple(self._normalize(match.group()).split())
            if parts:
                words.append((parts, match.start(), match.end()))
        return words

    def find(self, query: str) -> list[EntityMention]:
        """Every non-overlapping longest match, left to right."""
        if not self._names:
            return []
        words = self._words(query)
        mentions: list[EntityMention] = []
        i = 0
        while i < len(words):
            match = self._longest_at(words, i)
            if match is None:
                i += 1
                continue
            name, n_words = match
            start, end = words[i][1], words[i + n_words - 1][2]
            start, end = _trim_punctuation(query, start, end)
            mentions.append(EntityMention(entity=name, text=query[start:end], start=start, end=end))
            i += n_words
        return mentions

    def _longest_at(self, words: list[tuple[tuple[str, ...], int, int]], i: int) -> tuple[str, int] | None:
        key: tuple[str, ...] = ()
        best = None
        for n_words in range(1, len(words) - i + 1):
            key += words[i + n_words - 1][0]
            if len(key) > self._longest:
                break
            if key in self._names:
                best = (self._names[key], n_words)
        return best


def _trim_punctuation(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span so it starts and ends on a letter or digit ("(tomatoes)," -> "tomatoes")."""
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return start, end


def distinct_entities(mentions: Iterable[EntityMention]) -> list[str]:
    """Entity names in order of first mention, each once."""
    return list(dict.fromkeys(m.entity for m in mentions))
