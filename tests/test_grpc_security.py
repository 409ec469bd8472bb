"""Serving securely: TLS and mutual TLS, bearer tokens (health open, reflection closed), path hiding, the
in-flight bound, and undecodable request bytes, all through real loopback channels."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from evdsearch.client.channel import ClientSecurity, open_channel, read_token
from evdsearch.engine.grpc_server.security import TlsFiles, TokenStore, check_authorization, tls_files
from evdsearch.engine.grpc_server.server import RunningServer, build_server
from evdsearch.engine.rewriters.template import TemplateRewriter
from evdsearch.engine.rewriting import QueryRewriter
from evdsearch.engine.search import SearchEngine
from evdsearch.errors import InvalidInput
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

QUERY = "two tomatoes next to a school bus"
TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text(f"\nother-token\n{TOKEN}\n", encoding="utf-8")
    return path


def _serve(engine: object, **kwargs: object) -> RunningServer:
    running = build_server(engine, port=0, max_workers=4, max_message_bytes=1 << 20, **kwargs)
    running.start()
    return running


@pytest.fixture(scope="module")
def tls_server(engine: SearchEngine, pki: Path, token_file: Path) -> RunningServer:
    running = _serve(engine, tls=TlsFiles(pki / "server.pem", pki / "server.key"), tokens=TokenStore(token_file))
    yield running
    running.stop(0)


def _local(running: RunningServer) -> str:
    return f"localhost:{running.port}"  # the name the server certificate carries


def _code(call: object, *args: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10)
    return info.value.code(), info.value.details() or ""


def test_tls_with_token_gets_hits_with_relative_uris(tls_server: RunningServer, pki: Path) -> None:
    assert tls_server.transport == "TLS + token auth"
    with open_channel(_local(tls_server), ClientSecurity(tls_ca=pki / "ca.pem", token=TOKEN)) as ch:
        resp = search_pb2_grpc.SearchServiceStub(ch).Search(pb.SearchRequest(text=QUERY, k=3), timeout=10)
    assert len(resp.hits) == 3
    assert all(hit.uri.startswith("images/") and not hit.uri.startswith("/") for hit in resp.hits)


@pytest.mark.parametrize(("metadata", "message"), [
    ((), "missing 'authorization' metadata"),
    ((("authorization", f"Basic {TOKEN}"),), "malformed 'authorization' metadata: expected 'Bearer TOKEN'"),
    ((("authorization", "Bearer"),), "malformed"),
    ((("authorization", "Bearer wrong-token"),), "invalid token"),
    ((("authorization", f"Bearer {TOKEN}x"),), "invalid token"),
])
def test_missing_malformed_or_wrong_token_is_unauthenticated(tls_server: RunningServer, pki: Path,
                                                             metadata: tuple, message: str) -> None:
    with open_channel(_local(tls_server), ClientSecurity(tls_ca=pki / "ca.pem")) as ch:
        stub = search_pb2_grpc.SearchServiceStub(ch)
        for call, request in ((stub.Search, pb.SearchRequest(text=QUERY)), (stub.Info, pb.InfoRequest())):
            with pytest.raises(grpc.RpcError) as info:
                call(request, timeout=10, metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert message in info.value.details()


def test_health_is_open_and_reflection_needs_the_token(tls_server: RunningServer, pki: Path) -> None:
    with open_channel(_local(tls_server), ClientSecurity(tls_ca=pki / "ca.pem")) as ch:
        answer = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(ch)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as info:
            list(reflect.ServerReflectionInfo(iter([request]), timeout=10))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with open_channel(_local(tls_server), ClientSecurity(tls_ca=pki / "ca.pem", token=TOKEN)) as ch:
        answers = list(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([request]), timeout=10))
        names = {s.name for s in answers[0].list_services_response.service}
        assert "evdsearch.v1.SearchService" in names


def test_plaintext_client_cannot_talk_to_a_tls_server(tls_server: RunningServer) -> None:
    with open_channel(_local(tls_server), ClientSecurity(token=TOKEN)) as ch:
        code, _ = _code(search_pb2_grpc.SearchServiceStub(ch).Info, pb.InfoRequest())
    assert code == grpc.StatusCode.UNAVAILABLE


def test_token_reload_replaces_the_accepted_tokens(engine: SearchEngine, tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("first\n", encoding="utf-8")
    store = TokenStore(path)
    running = _serve(engine, tokens=store)  # plaintext + token: the client adds it as metadata
    try:
        def info(token: str) -> grpc.StatusCode:
            with open_channel(running.address, ClientSecurity(token=token)) as ch:
                try:
                    search_pb2_grpc.SearchServiceStub(ch).Info(pb.InfoRequest(), timeout=10)
                except grpc.RpcError as err:
                    return err.code()
            return grpc.StatusCode.OK

        assert running.transport == "plaintext + token auth"
        assert (info("first"), info("second")) == (grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED)
        path.write_text("second\n", encoding="utf-8")
        assert running.tokens is store and store.reload() == 1
        assert (info("first"), info("second")) == (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OK)
        path.write_text("\n\n", encoding="utf-8")
        with pytest.raises(InvalidInput, match="holds no token"):
            store.reload()
        assert info("second") == grpc.StatusCode.OK  # a failed reload keeps the old tokens
    finally:
        running.stop(0)


def test_mutual_tls_requires_a_client_certificate(engine: SearchEngine, pki: Path) -> None:
    running = _serve(engine, tls=TlsFiles(pki / "server.pem", pki / "server.key", client_ca=pki / "ca.pem"))
    try:
        assert running.transport == "mutual TLS"
        with open_channel(_local(running), ClientSecurity(tls_ca=pki / "ca.pem")) as ch:
            code, _ = _code(search_pb2_grpc.SearchServiceStub(ch).Info, pb.InfoRequest())
        assert code == grpc.StatusCode.UNAVAILABLE
        with open_channel(_local(running), ClientSecurity(tls_ca=pki / "ca.pem", tls_cert=pki / "client.pem",
                                                          tls_key=pki / "client.key")) as ch:
            assert search_pb2_grpc.SearchServiceStub(ch).Info(pb.InfoRequest(), timeout=10).index_size == 12
    finally:
        running.stop(0)


def test_expose_paths_shows_absolute_uris(engine: SearchEngine) -> None:
    running = _serve(engine, expose_paths=True)
    try:
        with open_channel(running.address) as ch:
            resp = search_pb2_grpc.SearchServiceStub(ch).Search(pb.SearchRequest(text=QUERY, k=2), timeout=10)
        assert all(Path(hit.uri).is_absolute() and Path(hit.uri).is_file() for hit in resp.hits)
    finally:
        running.stop(0)


class _SlowRewriter(TemplateRewriter):
    def rewrite_batch(self, items):  # noqa: ANN001, ANN201
        time.sleep(1.0)
        return super().rewrite_batch(items)


def test_beyond_max_concurrent_is_resource_exhausted_at_once(engine: SearchEngine) -> None:
    slow = SearchEngine(engine.store, engine.clip, QueryRewriter(engine.kb, _SlowRewriter(), cache_size=0),
                        engine.config, kb=engine.kb)
    running = _serve(slow, max_concurrent=2)
    try:
        with open_channel(running.address) as ch:
            stub = search_pb2_grpc.SearchServiceStub(ch)
            busy = [threading.Thread(target=stub.Search, args=(pb.SearchRequest(text=QUERY),),
                                     kwargs={"timeout": 10}) for _ in range(2)]
            for thread in busy:
                thread.start()
            time.sleep(0.3)  # both are in the slow rewriter now
            started = time.monotonic()
            code, details = _code(stub.Search, pb.SearchRequest(text=QUERY))
            waited = time.monotonic() - started
            for thread in busy:
                thread.join(10)
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and details
            assert waited < 0.5  # refused at once, not queued behind the slow calls
            assert len(stub.Search(pb.SearchRequest(text=QUERY, k=1), timeout=10).hits) == 1
    finally:
        running.stop(0)


def test_undecodable_bytes_are_invalid_argument(engine: SearchEngine) -> None:
    running = _serve(engine)
    try:
        with grpc.insecure_channel(running.address) as ch:
            raw = ch.unary_unary("/evdsearch.v1.SearchService/Search")  # bytes in, bytes out
            for payload in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xc3\x28"):  # bad tag, short, bad UTF-8
                code, details = _code(raw, payload)
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (payload, code, details)
                assert "not a valid protobuf message" in details
    finally:
        running.stop(0)


def test_flag_and_file_checks(tmp_path: Path) -> None:
    assert tls_files(None, None, None) is None
    with pytest.raises(InvalidInput, match="both --tls-cert"):
        tls_files("a.pem", None, None)
    with pytest.raises(InvalidInput, match="--tls-client-ca needs"):
        tls_files(None, None, "ca.pem")
    (tmp_path / "t").write_text("a b\n")
    with pytest.raises(InvalidInput, match="spaces or control"):
        TokenStore(tmp_path / "t")
    (tmp_path / "t").write_text("tok\n")
    store = TokenStore(tmp_path / "t")
    assert check_authorization((("authorization", "bearer tok"),), store) is None  # the scheme is case-blind
    assert "more than once" in check_authorization((("authorization", "Bearer tok"),) * 2, store)
    assert read_token(tmp_path / "t") == "tok"


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVDSEARCH_TOKEN", " env-token ")
    assert read_token(None) == "env-token"
    monkeypatch.delenv("EVDSEARCH_TOKEN")
    assert read_token(None) is None


def test_search_cli_with_tls_and_token(tls_server: RunningServer, pki: Path, token_file: Path,
                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from evdsearch import cli

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("EVDSEARCH_TOKEN", raising=False)
    base = ["search", QUERY, "--server", _local(tls_server), "-k", "2", "--tls-ca", str(pki / "ca.pem")]
    assert cli.main([*base, "--token-file", str(token_file), "--json"]) == 0
    assert '"uri": "images/' in capsys.readouterr().out
    assert cli.main(base) == 2
    assert "UNAUTHENTICATED: missing 'authorization' metadata" in capsys.readouterr().err
    monkeypatch.setenv("EVDSEARCH_TOKEN", TOKEN)
    assert cli.main(base) == 0
    assert cli.main(["search", QUERY, "--server", _local(tls_server)]) == 3  # plaintext to a TLS server
    assert "If it serves TLS, pass --tls-ca" in capsys.readouterr().err


def test_demo_auth_flag() -> None:
    from evdsearch.demo.cli import parse_auth

    assert parse_auth(None) is None
    assert parse_auth("admin:pa:ss") == ("admin", "pa:ss")
    for bad in ("admin", ":pass", "admin:"):
        with pytest.raises(InvalidInput, match="USER:PASS"):
            parse_auth(bad)


def test_demo_resolves_relative_uris_against_its_image_root(tmp_path: Path) -> None:
    from evdsearch.demo.grpc_backend import response_from_proto

    msg = pb.SearchResponse(hits=[pb.Hit(id=1, uri="images/test/000001.png"), pb.Hit(id=2, uri="/abs/x.png"),
                                  pb.Hit(id=3, uri="https://example.org/y.jpg")])
    assert [h.uri for h in response_from_proto(msg).hits] == ["images/test/000001.png", "/abs/x.png",
                                                              "https://example.org/y.jpg"]
    local = [h.uri for h in response_from_proto(msg, str(tmp_path)).hits]
    assert local == [str(tmp_path / "images/test/000001.png"), "/abs/x.png", "https://example.org/y.jpg"]


def test_public_uri_never_shows_an_absolute_path() -> None:
    from evdsearch.engine.grpc_server.uris import public_uri

    assert public_uri("/srv/photos/a/b.jpg", "/srv/photos") == "a/b.jpg"
    assert public_uri("/elsewhere/secret/c.jpg", "/srv/photos") == "c.jpg"  # outside the root: the name only
    assert public_uri("/srv/photos/d.jpg", None) == "d.jpg"
    assert public_uri("https://example.org/e.jpg", "/srv") == "https://example.org/e.jpg"


def test_info_and_rewrite_name_folders_without_their_paths(engine: SearchEngine) -> None:
    for expose in (False, True):
        running = _serve(engine, expose_paths=expose)
        try:
            with open_channel(running.address) as ch:
                info = search_pb2_grpc.SearchServiceStub(ch).Info(pb.InfoRequest(), timeout=10)
            assert Path(info.model).is_absolute() == expose
            assert Path(info.model).name == Path(engine.info().model).name
        finally:
            running.stop(0)


def test_tls_flags_are_checked_before_anything_loads(tmp_path: Path, pki: Path) -> None:
    from evdsearch.errors import NotFound

    with pytest.raises(NotFound, match="--tls-cert: no such file"):
        tls_files(str(tmp_path / "missing.pem"), str(pki / "server.key"), None)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(InvalidInput, match="is not a PEM file"):
        tls_files(str(tmp_path / "junk.pem"), str(pki / "server.key"), None)
    with pytest.raises(InvalidInput, match="does not fit --tls-cert"):
        tls_files(str(pki / "server.pem"), str(pki / "client.key"), None)
    assert tls_files(str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem")).describe() == "mutual TLS"
