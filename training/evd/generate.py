"""The EVD generation loop: ask the LLM each prompt about each entity, clean, write resumably."""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from evdsearch.training.evd.clean import split_descriptions
from evdsearch.training.evd.entities import parse_entity_list
from evdsearch.training.evd.prompts import EXTRACT_PROMPT, Prompt
from evdsearch.training.evd.store import DescribeKey, EvdStore
from evdsearch.training.llm.base import ChatLLM, ChatRequest, ChatResult, Message, chat_many


@dataclass
class GenerateConfig:
    """How to ask: prompts, samples, decoding."""

    prompts: dict[str, Prompt]  # prompt name -> the question and how it is framed
    per_entity: int = 2  # answers per (entity, prompt): sample 0 greedy, the rest seeded sampling
    max_new_tokens: int = 96  # per answer; an answer cut here loses its unfinished last sentence
    temperature: float = 0.7  # sampling temperature for samples 1..per_entity-1
    seed: int = 0  # base seed; each (entity, prompt, sample) gets its own, so resumed runs match
    extract_max_new_tokens: int = 48  # per caption, for entity extraction
    batch_size: int = 6  # calls answered together (local models batch them; HTTP ones go one by one)
    progress: bool = True  # tqdm bar on stderr


@dataclass
class RunStats:
    """What this run did (earlier runs' tokens are in EvdStore)."""

    calls: int = 0  # LLM calls made now
    skipped: int = 0  # calls already done by an earlier run
    prompt_tokens: int = 0
    completion_tokens: int = 0
    descriptions: int = 0  # new description lines written
    seconds: float = 0.0
    per_prompt: Counter = field(default_factory=Counter)  # new descriptions per prompt name

    def add(self, result: ChatResult) -> None:
        self.calls += 1
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens


def call_seed(seed: int, *parts: object) -> int:
    """A stable 31-bit seed for one call (independent of call order, so a resumed run repeats it)."""
    return zlib.crc32("|".join(map(str, (seed, *parts))).encode("utf-8")) & 0x7FFFFFFF


def describe_entities(llm: ChatLLM, entities: list[str], cfg: GenerateConfig, store: EvdStore) -> RunStats:
    """Ask every prompt `per_entity` times about every entity; keys already in `store` are skipped."""
    # prompt-major: a batch then shares one prompt's system turn and examples (read once, see chat_batch)
    keys: list[DescribeKey] = [(e, p, s) for p in cfg.prompts for e in entities for s in range(cfg.per_entity)]
    todo = [k for k in keys if k not in store.done]
    stats = RunStats(skipped=len(keys) - len(todo))
    model = llm_provenance(llm)
    started = time.perf_counter()
    with tqdm(total=len(todo), desc="evd generate", unit="call", disable=not cfg.progress,
              dynamic_ncols=True) as bar:
        for first in range(0, len(todo), cfg.batch_size):
            batch = todo[first: first + cfg.batch_size]
            requests = [_describe_request(key, cfg) for key in batch]
            for key, request, result in zip(batch, requests, chat_many(llm, requests), strict=True):
                stats.add(result)
                written = store.add_description_call(key, _records(key, result, request, cfg, model),
                                                     _log_entry(request, result))
                stats.descriptions += written
                stats.per_prompt[key[1]] += written
                bar.update(1)
            bar.set_postfix(descriptions=store.n_descriptions)
    stats.seconds = time.perf_counter() - started
    return stats


def _describe_request(key: DescribeKey, cfg: GenerateConfig) -> ChatRequest:
    entity, prompt_name, sample = key
    messages: list[Message] = cfg.prompts[prompt_name].messages(entity)  # type: ignore[assignment]
    return ChatRequest(messages, max_new_tokens=cfg.max_new_tokens,
                       temperature=0.0 if sample == 0 else cfg.temperature,
                       seed=call_seed(cfg.seed, entity, prompt_name, sample))


def llm_provenance(llm: ChatLLM) -> dict[str, Any]:
    """What identifies the model that wrote a description: its name and, when known, its weights' hash."""
    from evdsearch.training.llm.install import provenance

    ref = getattr(llm, "ref", None)
    installed = provenance(ref.location) if ref is not None and ref.local else {}
    return {"model": llm.name, **({"model_sha256": installed["gguf_sha256"]} if installed else {})}


def _records(key: DescribeKey, result: ChatResult, request: ChatRequest, cfg: GenerateConfig,
             model: dict[str, Any]) -> list[dict[str, Any]]:
    entity, prompt_name, sample = key
    prompt = cfg.prompts[prompt_name]
    truncated = result.completion_tokens >= cfg.max_new_tokens
    provenance = {**model, "prompt": prompt_name, "prompt_version": prompt.version, "sample": sample,
                  "temperature": request.temperature, "seed": request.seed, "max_new_tokens": cfg.max_new_tokens}
    texts = split_descriptions(result.text, truncated=truncated, min_words=prompt.min_words)
    return [{"entity": entity, "description": text, "source": f"llm:{model['model']}",
             "score": round(1.0 / (1 + i), 4),  # earlier sentences of an answer are the salient ones
             **provenance} for i, text in enumerate(texts)]


def _log_entry(request: ChatRequest, result: ChatResult) -> dict[str, Any]:
    return {"question": request.messages[-1]["content"], "temperature": request.temperature,
            "seed": request.seed, "raw": result.text, "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens}


def extract_entities(llm: ChatLLM, captions: Iterable[str], cfg: GenerateConfig, store: EvdStore,
                     stats: RunStats) -> list[str]:
    """Entities the LLM finds in the captions, most frequent first (earlier runs' answers reused)."""
    captions = list(dict.fromkeys(captions))
    todo = [c for c in captions if c not in store.extracted]
    with tqdm(total=len(todo), desc="evd extract", unit="caption", disable=not cfg.progress,
              dynamic_ncols=True) as bar:
        for first in range(0, len(todo), cfg.batch_size):
            batch = todo[first: first + cfg.batch_size]
            requests = [ChatRequest([{"role": "user", "content": EXTRACT_PROMPT.format(caption=caption)}],
                                    max_new_tokens=cfg.extract_max_new_tokens, seed=cfg.seed) for caption in batch]
            for caption, result in zip(batch, chat_many(llm, requests), strict=True):
                stats.add(result)
                store.add_extraction(caption, parse_entity_list(result.text, caption=caption),
                                     {"raw": result.text, "prompt_tokens": result.prompt_tokens,
                                      "completion_tokens": result.completion_tokens})
                bar.update(1)
    counts = Counter(entity for caption in captions for entity in store.extracted[caption])
    return [entity for entity, _ in counts.most_common()]
