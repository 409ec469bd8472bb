"""The single definition of the seq2seq rewriter's input text, shared by training and serving."""

from __future__ import annotations

from evdsearch.engine.rewriters.base import Evidence, description_text

PREFIX = "rewrite:"  # task prefix, T5 style


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
