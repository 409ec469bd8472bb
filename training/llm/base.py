"""The chat interface every LLM backend implements, and its result type."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypedDict


class Message(TypedDict):
    """One chat turn, as in the OpenAI chat API."""

    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class ChatResult:
    """One completion and what it cost."""

    text: str  # the assistant's answer
    prompt_tokens: int  # tokens read (as counted by the backend)
    completion_tokens: int  # tokens generated


class ChatLLM(Protocol):
    """A chat model: local transformers model or a remote OpenAI-compatible endpoint."""

    name: str  # short model name recorded in outputs ("source": "llm:<name>")

    def chat(
        self,
        messages: list[Message],
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> ChatResult:
        """Answer the conversation; temperature 0 is greedy, otherwise sampling seeded by `seed`."""
        ...


@dataclass(frozen=True)
class ChatRequest:
    """One `chat` call's arguments, for backends that answer several at once."""

    messages: list[Message]
    max_new_tokens: int = 128
    temperature: float = 0.0
    seed: int | None = None


def chat_many(llm: ChatLLM, requests: list[ChatRequest]) -> Iterator[ChatResult]:
    """Answers to several requests, in order: from one batch where the backend has `chat_batch`
    (local models: several times the throughput on CPU), else from one `chat` call after another,
    each yielded as soon as it arrives (so a caller can save it before the next call)."""
    batch = getattr(llm, "chat_batch", None)
    if batch is not None:
        yield from batch(requests)
        return
    for r in requests:
        yield llm.chat(r.messages, r.max_new_tokens, r.temperature, r.seed)
