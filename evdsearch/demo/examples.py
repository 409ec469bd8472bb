"""Example queries for the demo page: shapes-world ones whose entities the knowledge base knows, else made from its entities."""

from __future__ import annotations

# (query, KB entities it needs); attribute-only queries need none and are always offered.
SHAPES_EXAMPLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("a tomato next to a school bus", ("tomato", "school bus")),
    ("a zebra above a stop sign", ("zebra", "stop sign")),
    ("a full moon to the left of a pizza slice", ("full moon", "pizza slice")),
    ("a basketball under a christmas tree", ("basketball", "christmas tree")),
    ("a small red circle to the right of a blue square", ()),
)
PAIR_TEMPLATE = "a {a} next to a {b}"  # for KB entities when the shapes examples do not fit
SINGLE_TEMPLATE = "a picture of a {a}"


def example_queries(entities: list[str] | None, n: int = 5) -> list[str]:
    """Up to n queries; `entities` None means the backend cannot list them (show the shapes examples)."""
    if entities is None:
        return [query for query, _ in SHAPES_EXAMPLES][:n]
    known = {e.lower() for e in entities}
    fitting = [(query, needs) for query, needs in SHAPES_EXAMPLES if needs and set(needs) <= known]
    chosen = [query for query, _ in fitting]
    names = sorted(known - {name for _, needs in fitting for name in needs})  # entities not shown yet
    step = max(1, len(names) // (2 * n))  # spread the picks over the alphabet
    picks = names[::step]
    for a, b in zip(picks[0::2], picks[1::2], strict=False):
        if len(chosen) >= n - 1:
            break
        chosen.append(PAIR_TEMPLATE.format(a=a, b=b))
    if len(picks) % 2 and len(chosen) < n - 1:
        chosen.append(SINGLE_TEMPLATE.format(a=picks[-1]))
    chosen += [query for query, needs in SHAPES_EXAMPLES if not needs]
    return list(dict.fromkeys(chosen))[:n]
