"""Builder shared by the ONNX rewriter tests: a tiny T5 overfitted on a few examples, saved and exported.

A plain function (no fixture, no tests), like test_engine_support, so each module picks its examples and scope.
"""

from __future__ import annotations

from pathlib import Path


def train_exported_rewriter(out: Path, examples: list[tuple[str, dict[str, list[str]], str]], layers: int) -> Path:
    """Overfit a scratch T5 (`layers` encoder and decoder layers) on (query, entities, target) `examples`, so
    generations are long and meaningful, then save it to `out` and export it to ONNX there."""
    import torch

    from evdsearch.engine.rewriters.prompt import format_rewriter_input
    from evdsearch.training.export.rewriter_onnx import export_rewriter
    from evdsearch.training.rewriter.data import tokenize_pairs
    from evdsearch.training.rewriter.model import ScratchT5Config, scratch_model

    prompts = [format_rewriter_input(q, e) for q, e, _ in examples]
    targets = [t for _, _, t in examples]
    cfg = ScratchT5Config(vocab_size=200, d_model=32, d_ff=64, d_kv=8, num_heads=2, num_layers=layers,
                          num_decoder_layers=layers, dropout_rate=0.0)
    model, tokenizer = scratch_model((prompts + targets) * 5, cfg, seed=0)
    batch = tokenize_pairs(tokenizer, prompts, targets, 64, 64, "cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = model(**batch).loss
        if loss.item() < 0.01:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.generation_config.max_new_tokens = 24
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    export_rewriter(out)
    return out
