"""The OpenAI-compatible backend against a real loopback HTTP server: answers, retries, timeouts, errors."""

from __future__ import annotations

import socket
import time

import pytest
from test_llm_fakeserver import FakeOpenAI

from evdsearch.errors import InvalidInput, ModelUnavailable
from evdsearch.training.llm import create_llm
from evdsearch.training.llm.openai_http import OpenAIChatLLM, OpenAIConfig

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe a zebra."}]


def _client(url: str, **overrides: object) -> OpenAIChatLLM:
    options = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01, **overrides}
    return OpenAIChatLLM(OpenAIConfig(base_url=url, model="fake-model", api_key="sk-test", **options))


def test_chat_sends_openai_payload_and_reads_usage() -> None:
    with FakeOpenAI().serve() as fake:
        result = _client(fake.url).chat(MESSAGES, max_new_tokens=32, temperature=0.7, seed=11)
    assert result.text == "You asked: Describe a zebra."
    assert (result.prompt_tokens, result.completion_tokens) == (5, 5)
    sent = fake.requests[0]
    assert sent["model"] == "fake-model" and sent["messages"] == MESSAGES
    assert (sent["max_tokens"], sent["temperature"], sent["seed"]) == (32, 0.7, 11)
    assert sent["_auth"] == "Bearer sk-test"


def test_server_error_then_success_is_retried() -> None:
    with FakeOpenAI(script=["500", "429", "ok"]).serve() as fake:
        result = _client(fake.url).chat(MESSAGES)
    assert result.text.startswith("You asked")
    assert len(fake.requests) == 3


def test_hanging_request_times_out_and_is_retried() -> None:
    with FakeOpenAI(script=["hang"], hang_s=3.0).serve() as fake:
        started = time.perf_counter()
        result = _client(fake.url, timeout_s=0.3).chat(MESSAGES)
        elapsed = time.perf_counter() - started
    assert result.text.startswith("You asked")
    assert len(fake.requests) == 2
    assert elapsed < 2.0  # did not wait for the hung answer


def test_persistent_server_errors_give_one_line_error() -> None:
    with FakeOpenAI(script=["503"] * 10).serve() as fake:
        with pytest.raises(ModelUnavailable) as info:
            _client(fake.url, max_retries=2).chat(MESSAGES)
    assert len(fake.requests) == 3
    message = str(info.value)
    assert "failed after 3 attempts" in message and "HTTP 503" in message and "\n" not in message


@pytest.mark.parametrize(("code", "error", "needle"), [("401", ModelUnavailable, "API_KEY"),
                                                       ("400", InvalidInput, "rejected the request")])
def test_client_errors_are_not_retried(code: str, error: type[Exception], needle: str) -> None:
    with FakeOpenAI(script=[code]).serve() as fake:
        with pytest.raises(error) as info:
            _client(fake.url).chat(MESSAGES)
    assert len(fake.requests) == 1
    assert needle in str(info.value) and f"canned {code}" in str(info.value)


def test_wrong_path_says_to_check_the_base_url() -> None:
    with FakeOpenAI().serve() as fake:
        with pytest.raises(ModelUnavailable, match="should end in /v1"):
            _client(fake.url.removesuffix("/v1")).chat(MESSAGES)


def test_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelUnavailable, match="cannot connect"):
        _client(f"http://127.0.0.1:{port}/v1", max_retries=1).chat(MESSAGES)


def test_config_from_env_prefers_evdsearch_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai.invalid/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-x")
    monkeypatch.setenv("EVDSEARCH_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("EVDSEARCH_LLM_API_KEY", raising=False)
    monkeypatch.delenv("EVDSEARCH_LLM_MODEL", raising=False)
    cfg = OpenAIConfig.from_env()
    assert (cfg.base_url, cfg.model, cfg.api_key) == ("http://127.0.0.1:9/v1", "gpt-x", "sk-openai")
    assert OpenAIConfig.from_env(model="other").model == "other"


def test_missing_model_name_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVDSEARCH_LLM_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidInput, match="EVDSEARCH_LLM_MODEL"):
        create_llm("openai")


def test_create_llm_openai_spec_talks_to_the_env_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI().serve() as fake:
        monkeypatch.setenv("EVDSEARCH_LLM_BASE_URL", fake.url)
        monkeypatch.setenv("EVDSEARCH_LLM_API_KEY", "sk-env")
        llm = create_llm("openai:served-model", timeout_s=5.0)
        assert llm.name == "served-model"
        assert llm.chat(MESSAGES).text.startswith("You asked")
    assert fake.requests[0]["model"] == "served-model" and fake.requests[0]["_auth"] == "Bearer sk-env"
