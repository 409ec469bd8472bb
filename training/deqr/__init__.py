"""DEQR data: description-enhanced query-rewrite candidates for training captions, ranked by the retriever."""
