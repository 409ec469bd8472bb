"""Client for any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, ...).

Plain stdlib HTTP (urllib) on purpose: one blocking POST per call needs no connection pool, async
or streaming, and it keeps the package free of an HTTP client dependency (httpx is only pulled in
here by the optional demo extra).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from evdsearch.errors import InvalidInput, ModelUnavailable
from evdsearch.training.llm.base import ChatResult, Message

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})  # transient: back off and try again
DEFAULT_BASE_URL = "https://api.openai.com/v1"


def _env(*names: str) -> str:
    """First non-empty environment variable among `names` ("" when none is set)."""
    return next((os.environ[n] for n in names if os.environ.get(n)), "")


@dataclass
class OpenAIConfig:
    """Where the endpoint is and how patiently to talk to it."""

    base_url: str = DEFAULT_BASE_URL  # up to and including /v1; /chat/completions is appended
    model: str = ""  # model name the server knows (e.g. "gpt-4o-mini", "Qwen/Qwen2.5-7B-Instruct")
    api_key: str = ""  # sent as a Bearer token when set; local servers usually need none
    timeout_s: float = 60.0  # socket timeout per request (connect and each read)
    max_retries: int = 4  # extra attempts after a 429 / 5xx / timeout / refused connection
    backoff_s: float = 1.0  # first wait; doubles each retry (with jitter), capped by max_backoff_s
    max_backoff_s: float = 30.0  # longest single wait, also caps a server's Retry-After

    @classmethod
    def from_env(cls, model: str = "", **overrides: Any) -> OpenAIConfig:
        """EVDSEARCH_LLM_BASE_URL / _MODEL / _API_KEY, falling back to the OPENAI_* names."""
        cfg = cls(
            base_url=_env("EVDSEARCH_LLM_BASE_URL", "OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            model=model or _env("EVDSEARCH_LLM_MODEL", "OPENAI_MODEL"),
            api_key=_env("EVDSEARCH_LLM_API_KEY", "OPENAI_API_KEY"),
            **overrides,
        )
        if not cfg.model:
            raise InvalidInput("no LLM model name: set EVDSEARCH_LLM_MODEL (or OPENAI_MODEL) or use --llm openai:MODEL")
        return cfg


class OpenAIChatLLM:
    """`ChatLLM` over HTTP: POST {base_url}/chat/completions with retries and exponential backoff."""

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self.name = config.model
        self.url = config.base_url.rstrip("/") + "/chat/completions"

    def chat(self, messages: list[Message], max_new_tokens: int = 128, temperature: float = 0.0,
             seed: int | None = None) -> ChatResult:
        payload: dict[str, Any] = {"model": self.config.model, "messages": messages,
                                   "max_tokens": max_new_tokens, "temperature": temperature}
        if seed is not None:
            payload["seed"] = seed
        body = self._post(payload)
        try:
            text = body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as err:
            raise ModelUnavailable(f"LLM endpoint {self.url} returned no choices[0].message.content") from err
        usage = body.get("usage") or {}
        # Servers without usage counts get a rough 4-characters-per-token estimate.
        prompt_tokens = usage.get("prompt_tokens") or sum(len(m["content"]) for m in messages) // 4
        completion_tokens = usage.get("completion_tokens") or len(text) // 4
        return ChatResult(text=text, prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens))

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            body, error, retry_after = self._attempt(request)
            if body is not None:
                return body
            log.warning("LLM request to %s failed (attempt %d/%d): %s", self.url, attempt + 1, attempts, error)
            if attempt + 1 < attempts:
                wait = self.config.backoff_s * 2**attempt * random.uniform(0.8, 1.2)
                time.sleep(min(max(wait, retry_after), self.config.max_backoff_s))
        raise ModelUnavailable(f"LLM endpoint {self.url} failed after {attempts} attempts: {error}")

    def _attempt(self, request: urllib.request.Request) -> tuple[dict[str, Any] | None, str, float]:
        """One HTTP round trip: (body, "", 0) or (None, why, seconds the server asked us to wait).

        Non-transient failures (auth, other 4xx) raise at once: retrying cannot fix them.
        """
        timeout_msg = f"no answer within {self.config.timeout_s:g} s"
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                return json.loads(response.read().decode("utf-8")), "", 0.0
        except urllib.error.HTTPError as err:
            detail = _error_detail(err)
            if err.code not in RETRY_STATUS:
                raise _client_error(self.url, err.code, detail) from None
            return None, f"HTTP {err.code} {detail}".strip(), _retry_after(err)
        except TimeoutError:
            return None, timeout_msg, 0.0
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                return None, timeout_msg, 0.0
            return None, f"cannot connect ({err.reason})", 0.0
        except (ConnectionError, json.JSONDecodeError, UnicodeDecodeError) as err:
            return None, f"{type(err).__name__}: {err}", 0.0


def _error_detail(err: urllib.error.HTTPError) -> str:
    """The server's error message (OpenAI style {"error": {"message"}}) on one short line."""
    try:
        raw = err.read().decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        message = json.loads(raw).get("error", raw)
        message = message.get("message", message) if isinstance(message, dict) else message
    except (json.JSONDecodeError, AttributeError):
        message = raw
    return " ".join(str(message).split())[:200]


def _retry_after(err: urllib.error.HTTPError) -> float:
    """Seconds from a Retry-After header (0 when absent or an HTTP date)."""
    try:
        return max(0.0, float(err.headers.get("Retry-After", "")))
    except (TypeError, ValueError):
        return 0.0


def _client_error(url: str, code: int, detail: str) -> Exception:
    if code in (401, 403):
        return ModelUnavailable(f"LLM endpoint {url} refused the request (HTTP {code}: {detail or 'unauthorised'}); "
                                "check EVDSEARCH_LLM_API_KEY / OPENAI_API_KEY")
    if code == 404:
        return ModelUnavailable(f"LLM endpoint {url} answered HTTP 404 ({detail or 'not found'}); check "
                                "EVDSEARCH_LLM_BASE_URL (it should end in /v1) and the model name")
    return InvalidInput(f"LLM endpoint {url} rejected the request (HTTP {code}: {detail or 'no detail'})")
