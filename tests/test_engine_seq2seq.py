"""The seq2seq rewriter's transformers path, with a tiny T5 and a word-level tokenizer trained in-test."""

from __future__ import annotations

from pathlib import Path

import pytest

from evdsearch.engine.rewriters import create_rewriter
from evdsearch.engine.rewriters.prompt import format_rewriter_input
from evdsearch.engine.rewriters.seq2seq import Seq2SeqRewriter

EXAMPLES = [  # (query, evidence, target): the tiny model learns these by heart
    ("a tomato on a table", {"tomato": ["a red round fruit"]}, "a red round fruit on a table"),
    ("a school bus in the rain", {"school bus": ["a long yellow vehicle"]}, "a long yellow vehicle in the rain"),
]


def _tokenizer(texts: list[str]):  # noqa: ANN202 - transformers type
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.WordPiece()  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer T5 overfitted on EXAMPLES, saved with save_pretrained (seconds on CPU)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    prompts = [format_rewriter_input(q, e) for q, e, _ in EXAMPLES]
    targets = [t for _, _, t in EXAMPLES]
    tokenizer = _tokenizer(prompts + targets)
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1,
                      num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0)
    model = T5ForConditionalGeneration(config)
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    labels = tokenizer(targets, return_tensors="pt", padding=True).input_ids
    labels[labels == 0] = -100
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(300):  # usually done in ~60 steps
        loss = model(**batch, labels=labels).loss
        if loss.item() < 0.02:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = tmp_path_factory.mktemp("tiny_t5")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_folder_spec_loads_the_seq2seq_rewriter(t5_dir: Path) -> None:
    rewriter = create_rewriter(str(t5_dir), device="cpu")
    assert isinstance(rewriter, Seq2SeqRewriter) and rewriter.name == str(t5_dir)


def test_rewrites_follow_the_evidence(t5_dir: Path) -> None:
    rewriter = Seq2SeqRewriter(t5_dir, device="cpu")
    query, evidence, target = EXAMPLES[0]
    assert rewriter.rewrite(query, evidence) == target
    assert rewriter.rewrite_batch([(q, e) for q, e, _ in EXAMPLES]) == [t for _, _, t in EXAMPLES]
    assert rewriter.rewrite_batch([]) == []


def test_query_rewriter_with_seq2seq(t5_dir: Path, tmp_path: Path) -> None:
    from evdsearch.engine.rewriting import QueryRewriter
    from evdsearch.indexer.kb import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records([{"entity": "tomato", "description": "a red round fruit", "source": "enc", "score": 1.0}])
        result = QueryRewriter(kb, Seq2SeqRewriter(t5_dir, device="cpu")).rewrite("a tomato on a table")
    assert result.rewritten == "a red round fruit on a table"


def test_large_batches_are_generated_in_chunks(t5_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark hands over thousands of queries at once; they go through generate a chunk at a time."""
    import evdsearch.engine.rewriters.seq2seq as seq2seq

    rewriter = Seq2SeqRewriter(t5_dir, device="cpu")
    sizes = []
    generate = rewriter._generate
    monkeypatch.setattr(seq2seq, "CHUNK", 2)
    monkeypatch.setattr(rewriter, "_generate", lambda prompts: sizes.append(len(prompts)) or generate(prompts))
    items = [(q, e) for q, e, _ in EXAMPLES] * 2 + [EXAMPLES[0][:2]]
    assert rewriter.rewrite_batch(items) == [t for _, _, t in EXAMPLES] * 2 + [EXAMPLES[0][2]]
    assert sizes == [2, 2, 1]
