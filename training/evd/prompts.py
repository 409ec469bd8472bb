"""The prompts that ask an LLM for entity visual descriptions, and the entity-extraction prompt."""

from __future__ import annotations

import zlib

from evdsearch.errors import InvalidInput

# Question templates by name; `{entity}` is replaced by the entity name. "features" is EvdCLIP's.
DESCRIBE_PROMPTS: dict[str, str] = {
    "features": "What are useful features for distinguishing a {entity} in a photo?",
    "appearance": "Describe what a {entity} looks like in a photo.",
    "attributes": "What colour, shape, size and surface pattern does a {entity} have?",
    "identify": "How would you recognise a {entity} at a glance in a picture?",
}
DEFAULT_PROMPTS = ("features", "appearance", "attributes")

# Steers answers towards short factual sentences, which split cleanly into descriptions.
DESCRIBE_SYSTEM = "You are a helpful assistant. Answer in two or three short, plain sentences about appearance."

EXTRACT_PROMPT = (
    "List the visual entities in this caption: the objects, animals, people or things that could be "
    "seen in the image. Write one short noun phrase per line, without colours, sizes or counts, and "
    "nothing else.\nCaption: {caption}"
)


def resolve_prompts(names_or_templates: list[str] | None) -> dict[str, str]:
    """Prompt names from DESCRIBE_PROMPTS, or literal templates containing {entity} (named custom-<crc32>)."""
    chosen: dict[str, str] = {}
    for item in names_or_templates or list(DEFAULT_PROMPTS):
        if item in DESCRIBE_PROMPTS:
            chosen[item] = DESCRIBE_PROMPTS[item]
        elif "{entity}" in item:
            chosen[f"custom-{zlib.crc32(item.encode('utf-8')):08x}"] = item  # stable across resumed runs
        else:
            raise InvalidInput(f"unknown prompt {item!r}: use one of {', '.join(DESCRIBE_PROMPTS)} "
                               "or a template containing {entity}")
    return chosen
