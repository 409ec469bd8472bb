"""EX2: the CLIP reward on a hand-made case, and a few GRPO steps on a tiny random causal LM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evdsearch.training.descriptions.ex2 import (
    ClipRewarder,
    EX2Config,
    clip_reward,
    completion_text,
    prompt_rows,
)


def test_clip_reward_hand_made() -> None:
    images = np.array([[1.0, 0.0], [0.0, 1.0]])  # two unit images
    texts = np.array([[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)], [-1.0, 0.0]])
    # text 0: cos 1 and 0 -> mean 0.5; text 1: both 0.7071; text 2: -1 and 0 -> -0.5
    np.testing.assert_allclose(clip_reward(texts, images), [50.0, 100 * math.sqrt(0.5), -50.0], rtol=1e-6)


def test_rewarder_reads_trl_completions_and_concept_column() -> None:
    table = {"red": np.array([1.0, 0.0]), "blue": np.array([0.0, 1.0])}
    encode = lambda texts: np.stack([table.get(t.split()[0], np.array([0.6, 0.8])) for t in texts])  # noqa: E731
    rewarder = ClipRewarder(encode, {"cherry": np.array([[1.0, 0.0]]), "sky": np.array([[0.0, 1.0]])})
    completions = [[{"role": "assistant", "content": "red round"}], "blue thing", [{"content": "other"}]]
    assert completion_text(completions[0]) == "red round"
    rewards = rewarder(prompts=None, completions=completions, concept=["cherry", "cherry", "sky"])
    np.testing.assert_allclose(rewards, [100.0, 0.0, 80.0])


def _tiny_lm_and_tokenizer():  # noqa: ANN202
    """A 2-layer random Llama and a word-level tokenizer with a chat template (no downloads)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<pad>", "<s>", "</s>", "<unk>", "user", "assistant", ":", "describe", "a", "photo", "of", "red",
             "blue", "round", "cherry", "sky", "small", "big", "square", "it", "is", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>", unk_token="<unk>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
                               "{% if add_generation_prompt %}assistant : {% endif %}")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg), tokenizer


def test_grpo_steps_change_lora_parameters_without_nans(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("trl")
    import torch

    from evdsearch.training.descriptions.ex2 import grpo_train

    torch.set_num_threads(2)
    model, tokenizer = _tiny_lm_and_tokenizer()
    # Reward: count of "red" words, so sampled groups differ and the advantage is non-zero.
    rewarder = ClipRewarder(lambda texts: np.array([[t.split().count("red") + 0.1, 1.0] for t in texts]),
                            {"cherry": np.array([[1.0, 0.0]]), "sky": np.array([[1.0, 0.0]])})
    rows = prompt_rows(["cherry", "sky"], ["describe a photo of a {}"])
    cfg = EX2Config(data="", model="", out=str(tmp_path), steps=3, num_generations=4, prompts_per_step=1,
                    max_new_tokens=6, lr=1e-2, beta=0.04, lora_r=4)
    peft_model, steps = grpo_train(model, tokenizer, rewarder, rows, cfg, str(tmp_path / "trainer"))
    lora = {n: p for n, p in peft_model.named_parameters() if "lora_B" in n}
    assert lora, "LoRA adapters were not attached"
    assert any(p.detach().abs().sum() > 0 for p in lora.values()), "lora_B is still zero: no update happened"
    assert all(torch.isfinite(p).all() for p in peft_model.parameters())
    assert len(steps) == 3 and all(math.isfinite(e["reward"]) and math.isfinite(e.get("loss", 0.0)) for e in steps)


def test_contrastive_reward_pays_only_for_what_tells_the_concept_apart() -> None:
    images = {"cherry": np.array([[1.0, 0.0]]), "sky": np.array([[0.0, 1.0]])}
    table = {"red": np.array([1.0, 0.0]), "both": np.array([math.sqrt(0.5), math.sqrt(0.5)])}
    encode = lambda texts: np.stack([table[t] for t in texts])  # noqa: E731
    mean, contrastive = ClipRewarder(encode, images), ClipRewarder(encode, images, "contrastive")
    # "both" fits every concept alike: high under the paper's reward, nothing under the contrastive one.
    np.testing.assert_allclose(mean.score(["red", "both"], ["cherry", "cherry"]), [100.0, 100 * math.sqrt(0.5)])
    np.testing.assert_allclose(contrastive.score(["red", "both", "red"], ["cherry", "cherry", "sky"]),
                               [50.0, 0.0, -50.0], atol=1e-9)
    with pytest.raises(ValueError, match="reward"):
        ClipRewarder(encode, images, "max")


def test_zero_train_concepts_trains_on_all() -> None:
    from evdsearch.training.descriptions.ex2 import split_concepts

    concepts = [f"c{i}" for i in range(10)]
    assert split_concepts(concepts, 0, seed=1) == (sorted(concepts), [])
    train, held = split_concepts(concepts, 4, seed=1)
    assert len(train) == 4 and len(held) == 6 and not set(train) & set(held)


class _ScriptedLLM:
    """Answers the n-th request of a batch with texts[n % len(texts)]: a scripted stand-in for the LLM."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.calls = texts, 0

    def chat_batch(self, requests):  # noqa: ANN001, ANN201
        from evdsearch.training.llm.base import ChatResult

        out = []
        for _ in requests:
            out.append(ChatResult(self.texts[self.calls % len(self.texts)], 1, 1))
            self.calls += 1
        return out


def test_best_of_keeps_the_highest_reward_answer_per_question() -> None:
    from evdsearch.training.descriptions.ex2_run import describe_concepts

    table = {"red": np.array([1.0, 0.0]), "blue": np.array([0.0, 1.0])}
    encode = lambda texts: np.stack([table[t] for t in texts])  # noqa: E731
    rewarder = ClipRewarder(encode, {"cherry": np.array([[1.0, 0.0]])})
    cfg = EX2Config(data="", model="", out="", per_concept=2, best_of=3, batch_size=4)
    llm = _ScriptedLLM(["blue", "red", "blue"])  # each question's three tries: blue, red, blue
    records = describe_concepts(llm, rewarder, ["cherry"], ["q1 {}", "q2 {}"], {"cherry"}, cfg)
    assert llm.calls == 6  # 2 questions x best of 3
    assert [(r["prompt"], r["description"], r["score"]) for r in records] == [("q1 cherry", "red", 100.0),
                                                                               ("q2 cherry", "red", 100.0)]
    plain = describe_concepts(_ScriptedLLM(["blue", "red"]), rewarder, ["cherry"], ["q1 {}", "q2 {}"], set(),
                              EX2Config(data="", model="", out="", per_concept=2, best_of=1, batch_size=4))
    assert [r["description"] for r in plain] == ["blue", "red"] and plain[0]["split"] == "held_out"


def test_masked_names_earn_nothing_so_repeating_the_name_is_not_rewarded() -> None:
    images = {"cherry": np.array([[1.0, 0.0]]), "stop sign": np.array([[0.0, 1.0]])}
    seen: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:  # the name points at its images; "red" too; anything else is neutral
        seen.extend(texts)
        return np.stack([np.array([1.0, 0.0]) if ("cherry" in t or "red" in t)
                         else np.array([math.sqrt(0.5), math.sqrt(0.5)]) for t in texts])

    plain = ClipRewarder(encode, images, "contrastive")
    masked = ClipRewarder(encode, images, "contrastive", mask_names=True)
    assert plain.score(["A cherry is a cherry."], ["cherry"])[0] == pytest.approx(50.0)
    assert masked.score(["A cherry is a cherry.", "A Cherry is red."], ["cherry", "cherry"]) == pytest.approx(
        [0.0, 50.0])
    assert seen[-2:] == ["A object is a object.", "A object is red."]
    assert masked.scored_text("Stop signs near cherries") == "object near object"
