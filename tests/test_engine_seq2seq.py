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


def test_template_ensemble_adds_the_template_rewrite(t5_dir: Path, tmp_path: Path) -> None:
    """With a trained rewriter the template's rewrite rides along as a variant; without the flag it does not,
    and the template rewriter itself never gets a copy of its own rewrite."""
    from evdsearch.engine.rewriters.template import TemplateRewriter, template_rewrite
    from evdsearch.engine.rewriting import QueryRewriter
    from evdsearch.indexer.kb import KnowledgeBase

    query = "a tomato on a table"
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records([{"entity": "tomato", "description": "a red round fruit", "source": "enc", "score": 1.0}])
        ensembled = QueryRewriter(kb, Seq2SeqRewriter(t5_dir, device="cpu"), template_ensemble=True).rewrite(query)
        alone = QueryRewriter(kb, Seq2SeqRewriter(t5_dir, device="cpu")).rewrite(query)
        template = QueryRewriter(kb, TemplateRewriter(), template_ensemble=True).rewrite(query)
    assert ensembled.rewritten == alone.rewritten == "a red round fruit on a table"
    assert ensembled.variants == [template_rewrite(query, ensembled.descriptions)] == [template.rewritten]
    assert alone.variants == [] and template.variants == []


def test_engine_searches_with_the_mean_of_both_rewrites(t5_dir: Path, tmp_path: Path, tiny_clip_dir: Path) -> None:
    """q' is the normalised mean of the trained rewrite's and the template rewrite's embeddings: hits' rewritten
    scores say so, the explanation names the variant, and --no-template-ensemble (False) drops it."""
    import numpy as np
    from test_engine_support import build_index, build_kb, open_engine

    from evdsearch.search_api import SearchRequest

    index, kb = build_index(tmp_path, tiny_clip_dir), build_kb(tmp_path / "kb")
    query = "a tomato on a table"
    with open_engine(index, kb, rewriter=str(t5_dir)) as engine:
        response = engine.search(SearchRequest(text=query, k=3, explain=True))
        ex = response.explanation
        assert ex.rewritten_query == "a red round fruit on a table"
        assert len(ex.rewrite_variants) == 1 and ex.rewrite_variants[0].startswith("a tomato on a table, tomato which")
        vectors = engine.clip.encode_texts([ex.rewritten_query, ex.rewrite_variants[0]])
        mean = vectors.mean(axis=0) / np.linalg.norm(vectors.mean(axis=0))
        items = np.asarray(engine.store.embeddings)
        for hit in response.hits:
            assert hit.rewritten_score == pytest.approx(float(items[hit.id] @ mean), abs=1e-5)
        assert engine.info().rewriter == f"{t5_dir} + template"
        from evdsearch.proto import convert  # what gRPC clients get: Search's explanation and Rewrite

        assert list(convert.response_to_proto(response).explanation.rewrite_variants) == ex.rewrite_variants
        rewrite = convert.rewrite_to_proto(engine.rewrite(query), engine.rewriter_name)
        assert list(rewrite.rewrite_variants) == ex.rewrite_variants and rewrite.rewriter.endswith(" + template")
    with open_engine(index, kb, rewriter=str(t5_dir), template_ensemble=False) as engine:
        ex = engine.search(SearchRequest(text=query, k=3, explain=True)).explanation
        assert ex.rewrite_variants == [] and engine.info().rewriter == str(t5_dir)
