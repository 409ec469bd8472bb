"""The questions that ask an LLM for entity visual descriptions (prompts.json), and the extraction prompt."""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from evdsearch.errors import InvalidInput

PROMPTS_FILE = Path(__file__).with_name("prompts.json")
DEFAULT_PROMPTS = ("features", "appearance", "attributes")

# Steers answers towards short factual sentences, which split cleanly into descriptions.
DESCRIBE_SYSTEM = "You are a helpful assistant. Answer in two or three short, plain sentences about appearance."

EXTRACT_PROMPT = (
    "List the visual entities in this caption: the objects, animals, people or things that could be "
    "seen in the image. Write one short noun phrase per line, without colours, sizes or counts, and "
    "nothing else.\nCaption: {caption}"
)


_ARTICLE = re.compile(r"\ba (?=[aeioAEIO])")


@dataclass(frozen=True)
class Prompt:
    """One question about an entity, with what frames it."""

    question: str  # the user turn; {entity} is replaced by the entity name
    version: int = 1  # recorded on every description it produced
    system: str = DESCRIBE_SYSTEM  # the system turn ("" for none)
    shots: tuple[tuple[str, str], ...] = ()  # (entity, answer) examples asked and answered before the question
    min_words: int = 4  # answers (or sentences of them) shorter than this are dropped

    def messages(self, entity: str) -> list[dict[str, str]]:
        """The chat turns for `entity`: system, the worked examples, then the question."""
        turns = [{"role": "system", "content": self.system}] if self.system else []
        for example, answer in self.shots:
            turns += [{"role": "user", "content": self.ask(example)}, {"role": "assistant", "content": answer}]
        return [*turns, {"role": "user", "content": self.ask(entity)}]

    def ask(self, entity: str) -> str:
        """The question about `entity`, "a" before a vowel made "an" ("an apple")."""
        return _ARTICLE.sub("an ", self.question.format(entity=entity))


@cache
def known_prompts() -> dict[str, Prompt]:
    data = json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))
    return {name: Prompt(**{k: tuple(map(tuple, v)) if k == "shots" else v for k, v in entry.items()})
            for name, entry in data.items() if not name.startswith("_")}


def resolve_prompts(names_or_templates: list[str] | None) -> dict[str, Prompt]:
    """Prompt names from prompts.json, or literal templates containing {entity} (named custom-<crc32>)."""
    chosen: dict[str, Prompt] = {}
    known = known_prompts()
    for item in names_or_templates or list(DEFAULT_PROMPTS):
        if item in known:
            chosen[item] = known[item]
        elif "{entity}" in item:
            crc = zlib.crc32(item.encode("utf-8"))
            chosen[f"custom-{crc:08x}"] = Prompt(item)  # the name is stable across resumed runs
        else:
            raise InvalidInput(f"unknown prompt {item!r}: use one of {', '.join(known)} "
                               "or a template containing {entity}")
    return chosen
