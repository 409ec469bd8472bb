"""A fake OpenAI-compatible chat server on loopback (real HTTP), used by the LLM and EVD tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[list[dict[str, str]]], str]


def echo_responder(messages: list[dict[str, str]]) -> str:
    return f"You asked: {messages[-1]['content']}"


class FakeOpenAI:
    """Answers POST /v1/chat/completions; `script` lists per-request behaviours, then "ok" forever.

    Behaviours: "ok", "500", "503", "429", "401", "400", "hang" (sleep `hang_s`, then answer),
    "block" (wait until `release` is set).
    """

    def __init__(self, responder: Responder = echo_responder, script: list[str] | None = None,
                 hang_s: float = 2.0, block_after: int | None = None) -> None:
        self.responder = responder
        self.script = list(script or [])
        self.hang_s = hang_s
        self.block_after = block_after  # every request after this many answered ones blocks
        self.release = threading.Event()
        self.requests: list[dict[str, Any]] = []  # payloads (with "_auth" header added), in arrival order
        self.answered = 0
        self.lock = threading.Lock()
        self.url = ""

    def behaviour(self) -> str:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            if self.block_after is not None and len(self.requests) > self.block_after:
                return "block"
            return "ok"

    @contextmanager
    def serve(self) -> Iterator[FakeOpenAI]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        try:
            yield self
        finally:
            self.release.set()
            server.shutdown()
            server.server_close()


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_auth"] = self.headers.get("Authorization", "")
            with fake.lock:
                fake.requests.append(body)
            what = fake.behaviour()
            if what == "hang":
                time.sleep(fake.hang_s)
            elif what == "block":
                fake.release.wait(60)
                return
            if what in ("500", "503", "429", "401", "400"):
                self._send(int(what), {"error": {"message": f"canned {what}"}})
                return
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": "no such route"}})
                return
            text = fake.responder(body["messages"])
            usage = {"prompt_tokens": sum(len(m["content"].split()) for m in body["messages"]),
                     "completion_tokens": len(text.split())}
            with fake.lock:
                fake.answered += 1
            self._send(200, {"choices": [{"message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}], "usage": usage})

        def _send(self, code: int, obj: dict[str, Any]) -> None:
            data = json.dumps(obj).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

    return Handler


def test_fake_server_answers_over_real_http() -> None:
    import urllib.request

    with FakeOpenAI().serve() as fake:
        request = urllib.request.Request(
            fake.url + "/chat/completions", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode())
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
    assert body["choices"][0]["message"]["content"] == "You asked: hi"
