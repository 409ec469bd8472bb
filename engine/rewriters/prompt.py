"""The single definition of the seq2seq rewriter's input text, shared by training and serving, and the
chunked batch loop that both model rewriters (torch, onnxruntime) run over it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from evdsearch.engine.rewriters.base import Evidence, description_text

PREFIX = "rewrite:"  # task prefix, T5 style
SEPARATORS = ("|", ":", ";")  # what the format puts between its parts (rewrites do not copy them)


def format_rewriter_input(query: str, evidence: Evidence) -> str:
    """`rewrite: QUERY | ENTITY: DESC; DESC | ENTITY: DESC` with descriptions in the order given.

    `evidence` maps entity -> descriptions (Description objects or strings), best first; entities
    without descriptions are left out. Whitespace is collapsed so training and serving agree.
    """
    parts = [f"{PREFIX} {' '.join(query.split())}"]
    for entity, descriptions in evidence.items():
        texts = [t for t in (description_text(d) for d in descriptions) if t]
        if texts:
            parts.append(f"{' '.join(entity.split())}: " + "; ".join(texts))
    return " | ".join(parts)


def rewrite_in_chunks(items: Sequence[tuple[str, Evidence]], generate: Callable[[list[str]], list[str]],
                      chunk: int, by_length: bool = False) -> list[str]:
    """The rewrites of `items`, in order: `generate` sees at most `chunk` prompts at a time, since one call
    over thousands pads them all to the longest; `by_length` sorts them first, so a chunk holds similar lengths.

    Whitespace is collapsed, and an empty generation falls back to its query: it would leave nothing to encode.
    """
    prompts = [format_rewriter_input(query, evidence) for query, evidence in items]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i])) if by_length else list(range(len(prompts)))
    texts: dict[int, str] = {}
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        texts.update(zip(part, generate([prompts[i] for i in part]), strict=True))
    return [" ".join(texts[i].split()) or query for i, (query, _) in enumerate(items)]
