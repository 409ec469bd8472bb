"""Tokens rotate without a restart: the token file is re-read on reload while clients search; calls in flight
finish, the old token is refused from then on, the new one served; each refused call is one log line."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import grpc
import pytest
from test_engine_support import build_index, build_kb, open_engine

from evdsearch.atomic import write_text_atomic
from evdsearch.client.channel import ClientSecurity, open_channel
from evdsearch.engine.grpc_server.security import TokenStore
from evdsearch.engine.grpc_server.server import build_server
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

OLD, NEW = "old-token-0123456789abcdef", "new-token-fedcba9876543210"
SEARCH_S = 0.3  # each search takes this long, so calls are in flight when the tokens change


class Slow:
    """The engine, each search SEARCH_S slower."""

    def __init__(self, engine: object) -> None:
        self.engine = engine

    def search(self, *args, **kwargs):
        time.sleep(SEARCH_S)
        return self.engine.search(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.engine, name)


class Client(threading.Thread):
    """Searches back to back with `token`; on UNAUTHENTICATED it switches to NEW (as a rotated client would)."""

    def __init__(self, address: str, token: str) -> None:
        super().__init__(daemon=True)
        self.address, self.token, self.done = address, token, threading.Event()
        self.calls: list[tuple[str, float, float, str]] = []  # (token, start, end, code)

    def run(self) -> None:
        channels = {t: open_channel(self.address, ClientSecurity(token=t)) for t in (OLD, NEW)}
        try:
            while not self.done.is_set():
                stub = search_pb2_grpc.SearchServiceStub(channels[self.token])
                start = time.monotonic()
                try:
                    stub.Search(pb.SearchRequest(text="a tomato", k=2), timeout=30)
                    code = "OK"
                except grpc.RpcError as err:
                    code = err.code().name
                self.calls.append((self.token, start, time.monotonic(), code))
                if code == "UNAUTHENTICATED":
                    self.token = NEW
        finally:
            for channel in channels.values():
                channel.close()


def test_rotated_token_file_takes_effect_on_reload(tmp_path: Path, tiny_clip_dir: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{OLD}\n")
    caplog.set_level("WARNING", logger="evdsearch.engine.grpc_server.security")
    with open_engine(build_index(tmp_path, tiny_clip_dir), build_kb(tmp_path / "kb")) as engine:
        running = build_server(Slow(engine), port=0, max_workers=16, tokens=TokenStore(tokens))
        running.start()
        clients = [Client(running.address, OLD) for _ in range(6)] + [Client(running.address, NEW)]
        try:
            for c in clients:
                c.start()
            time.sleep(2)
            write_text_atomic(tokens, f"{NEW}\n")  # the operator rotates the file, then reloads
            with open_channel(running.address, ClientSecurity(token=OLD)) as channel:
                swap_from = time.monotonic()
                answer = search_pb2_grpc.AdminServiceStub(channel).Reload(pb.ReloadRequest(), timeout=120)
                swap_to = time.monotonic()
            time.sleep(2)
        finally:
            for c in clients:
                c.done.set()
            for c in clients:
                c.join(30)
            running.stop(0)
    calls = [call for c in clients for call in c.calls]
    codes = {code for *_rest, code in calls}
    in_flight = [call for call in calls if call[0] == OLD and call[1] < swap_from < call[2]]
    late_old = [call for call in calls if call[0] == OLD and call[1] > swap_to]
    new_after = [call for call in calls if call[0] == NEW and call[1] > swap_to]
    refused = [call for call in calls if call[3] == "UNAUTHENTICATED"]
    print(f"token rotation: {len(calls)} calls; {len(in_flight)} in flight with the old token when the file was "
          f"re-read, all OK: {all(c[3] == 'OK' for c in in_flight)}; old token after: "
          f"{sorted({c[3] for c in late_old})}; new token after: {len(new_after)} calls "
          f"{sorted({c[3] for c in new_after})}; refused calls logged: {len(refused)}")
    assert answer.generation == 2 and codes <= {"OK", "UNAUTHENTICATED"}
    assert in_flight and all(call[3] == "OK" for call in in_flight)  # 0 failed in-flight calls
    assert all(call[3] == "OK" for call in calls if call[0] == OLD and call[2] < swap_from)
    assert late_old and all(call[3] == "UNAUTHENTICATED" for call in late_old)
    assert new_after and all(call[3] == "OK" for call in new_after)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused call ")]
    entries = [json.loads(line.removeprefix("refused call ")) for line in lines]
    assert len(entries) == len(refused)  # one line per refused call
    assert all(e["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:[::1]:")) and e["reason"] == "invalid token"
               and e["method"] == "/evdsearch.v1.SearchService/Search" for e in entries)
    assert OLD not in caplog.text and NEW not in caplog.text  # who and why, never the token
