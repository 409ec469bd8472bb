"""EX2: align an LLM to CLIP's preferences with GRPO; reward = 100 · mean cos(concept images, description).

The policy (SmolLM2 + LoRA) answers EX2's question templates about a concept; each completion is
rewarded by how close its CLIP text embedding lies to the concept's cached image embeddings (`mean`, the
paper's reward) or by how much closer than to the average concept (`contrastive`: a text that fits every
image alike, such as a caption-shaped sentence with no attribute, earns nothing). With `mask_names` every
concept name in a completion is replaced by "object" before scoring (as DEQR masks entities): the
descriptions are used together with the class name, so only what they add to the name is rewarded, and
repeating the name ("A pumpkin is a pumpkin.", where an unmasked run collapses) earns nothing. GRPO
(trl) normalises rewards within each prompt's group of samples and penalises KL to the frozen
reference (the adapter switched off) with coefficient beta.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class EX2Config:
    """An `evdsearch train ex2` run; the CLI fills it."""

    data: str  # shapes world (classification view) or ImageFolder with a train split
    model: str  # CLIP checkpoint folder (the reward model)
    out: str  # output folder
    llm: str = "smollm2"  # local causal LM spec (training.llm.local.resolve_local_model)
    train_concepts: int = 16  # concepts the policy is trained on; the rest are held out (0: all, as in the paper)
    eval_concepts: int = 16  # train and held-out concepts each, scored before/after
    eval_templates: int = 2  # question templates per concept in the before/after evaluation (greedy)
    steps: int = 48  # GRPO optimiser steps
    num_generations: int = 4  # samples per prompt (GRPO group)
    prompts_per_step: int = 2  # prompts per step (batch = prompts_per_step * num_generations)
    max_new_tokens: int = 32  # completion length
    lr: float = 2e-3  # LoRA learning rate (high: few steps)
    beta: float = 0.04  # KL coefficient to the reference policy
    lora_r: int = 8  # LoRA rank
    temperature: float = 1.0  # sampling temperature during training
    per_concept: int = 25  # descriptions per concept at the end, one per question template (EX2's setting)
    best_of: int = 1  # sample best_of answers per question and keep the highest-reward one (1: plain sampling)
    reward: str = "mean"  # "mean" (the paper's) or "contrastive" (minus the mean over all concepts)
    mask_names: bool = False  # score completions with every concept name replaced by "object"
    gen_temperature: float = 0.7  # sampling temperature of the final descriptions
    batch_size: int = 16  # generations answered together at evaluation / final generation
    seed: int = 0
    threads: int = 2  # torch CPU threads


REWARDS = ("mean", "contrastive")


def clip_reward(text_emb: np.ndarray, image_emb: np.ndarray) -> np.ndarray:
    """100 · mean_i cos(image_i, text) for each text row; inputs L2-normalised, (T, D) and (N, D)."""
    return 100.0 * (text_emb @ image_emb.T).mean(axis=1)


def concept_centres(concept_images: dict[str, np.ndarray]) -> np.ndarray:
    """(C, D) mean image embedding of each concept: mean_i cos(image_i, t) = t · centre, so one product scores
    a text against every concept at once."""
    return np.stack([v.mean(axis=0) for v in concept_images.values()])


def completion_text(completion: Any) -> str:
    """trl passes a string (plain prompts) or a list of chat messages (conversational prompts)."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if isinstance(m, dict))


class ClipRewarder:
    """Scores descriptions of named concepts against their cached image embeddings."""

    def __init__(self, encode_texts: Callable[[list[str]], np.ndarray], concept_images: dict[str, np.ndarray],
                 reward: str = "mean", mask_names: bool = False):
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, not {reward!r}")
        self.encode_texts = encode_texts
        self.concept_images = concept_images
        self.centres = concept_centres(concept_images) if reward == "contrastive" else None
        self.mask: Callable[[str], str] | None = None
        if mask_names:
            from evdsearch.engine.entities import EntityMatcher
            from evdsearch.training.deqr.build import mask_entities

            matcher = EntityMatcher(concept_images)
            self.mask = lambda text: mask_entities(text, matcher)

    def scored_text(self, text: str) -> str:
        """What CLIP reads: the completion, names masked when asked, never empty."""
        if self.mask is not None:
            text = self.mask(text)
        return text.strip() or "."

    def score(self, texts: Sequence[str], concepts: Sequence[str]) -> list[float]:
        emb = self.encode_texts([self.scored_text(t) for t in texts])
        own = np.array([clip_reward(emb[i : i + 1], self.concept_images[c])[0] for i, c in enumerate(concepts)])
        if self.centres is not None:
            own -= 100.0 * (emb @ self.centres.T).mean(axis=1)
        return [float(r) for r in own]

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), concept: Sequence[str] = (),
                 **_: Any) -> list[float]:
        """trl's reward-function signature; `concept` is the dataset column of the same name."""
        return self.score([completion_text(c) for c in completions], concept)


def split_concepts(concepts: Sequence[str], n_train: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out) concepts, a seeded shuffle; n_train 0 trains on all (EX2 aligns on the dataset's
    own concepts), leaving none held out."""
    order = list(concepts)
    random.Random(seed).shuffle(order)
    if n_train <= 0 or n_train >= len(order):
        return sorted(order), []
    return sorted(order[:n_train]), sorted(order[n_train:])


def prompt_rows(concepts: Sequence[str], templates: Sequence[str]) -> list[dict[str, Any]]:
    """One GRPO prompt per (concept, template), in chat format, with the concept for the reward."""
    return [{"prompt": [{"role": "user", "content": t.format(c)}], "concept": c}
            for c in concepts for t in templates]


def mark_dequantized(model: Any) -> Any:
    """A GGUF checkpoint is de-quantised to float32 on load, but transformers still flags it as GGUF-quantised
    and the Trainer refuses to train it; the weights are plain float32, so drop the flag."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model


def grpo_train(model: Any, tokenizer: Any, rewarder: ClipRewarder, rows: list[dict[str, Any]], cfg: EX2Config,
               output_dir: str) -> tuple[Any, list[dict[str, Any]]]:
    """Run GRPO with LoRA; returns (the trained peft model, trl's per-step log)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=output_dir, max_steps=cfg.steps, learning_rate=cfg.lr, beta=cfg.beta,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations, max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
        seed=cfg.seed, bf16=False, fp16=False, disable_tqdm=True, dataloader_num_workers=0,
        gradient_checkpointing=False,  # a 135M model with LoRA fits in memory; recomputation only costs time
    )
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, lora_dropout=0.0, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    trainer = GRPOTrainer(model=mark_dequantized(model), reward_funcs=rewarder, args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=lora)
    trainer.train()
    steps = [e for e in trainer.state.log_history if "reward" in e]
    return trainer.model, steps
