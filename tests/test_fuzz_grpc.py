"""Fuzzing a real server on 127.0.0.1: hypothesis-made values for every RPC's fields, raw byte mutations of
serialized requests, and a table of hand-made bad inputs. No call may answer UNKNOWN or INTERNAL, the
server must stay SERVING, and the process's peak RSS must stay bounded."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections import Counter
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_support import build_index, build_kb, open_engine, png_bytes

from evdsearch.engine.grpc_server.server import RunningServer, build_server
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
MAX_MESSAGE = 4 << 20  # the fuzz server's message limit
DIM = 128  # the tiny CLIP's embedding dimension (checked against Info)
PEAK_RSS_GROWTH_MB = 400  # what a fuzz run may add to the process's peak RSS


def png_with_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims width x height (valid CRC): a decompression bomb's calling card."""
    data = png_bytes()
    ihdr = bytearray(data[16:29])  # width, height, depth, colour type, ...
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return data[:16] + bytes(ihdr) + crc + data[33:]


def zero_png(width: int, height: int) -> bytes:
    """A real, highly compressible black PNG (a few KB for millions of pixels)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def jpeg_bytes(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> RunningServer:
    root = tmp_path_factory.mktemp("fuzz")
    with open_engine(build_index(root, tiny_clip_dir), build_kb(root / "kb")) as engine:
        running = build_server(engine, port=0, max_workers=4, max_message_bytes=MAX_MESSAGE)
        running.start()
        yield running
        running.stop(0)


@pytest.fixture(scope="module")
def channel(server: RunningServer) -> grpc.Channel:
    with grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        yield ch


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Calls:
    """Counts every answer's status; fails on a forbidden one."""

    def __init__(self, timeout: float | None = 30.0) -> None:
        self.codes: Counter[str] = Counter()
        self.timeout = timeout  # None: no deadline, as many third-party clients call

    def call(self, method: object, request: object) -> None:
        try:
            method(request, timeout=self.timeout)
            code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            code = err.code()
            assert code not in FORBIDDEN, (code, err.details(), request if len(repr(request)) < 2000 else "...")
        self.codes[code.name] += 1


IMAGES = st.one_of(st.binary(max_size=512), st.sampled_from([
    png_bytes("red"), png_with_size(100_000, 100_000), png_with_size(0, 0), png_with_size(6000, 5000),
    png_bytes()[:40], b"GIF89a" + b"\0" * 20, b"%!PS-Adobe-3.0 EPSF-3.0\n", b"\xff\xd8\xff\xe0" + b"\0" * 30]))
FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)
SEARCH = st.builds(
    lambda text, image, embedding, k, mode, alpha, explain: _search_request(text, image, embedding, k, mode, alpha,
                                                                           explain),
    st.one_of(st.none(), st.text(max_size=1100)), st.one_of(st.none(), IMAGES),
    st.one_of(st.just([]), st.lists(FLOATS, max_size=DIM + 4), st.lists(FLOATS, min_size=DIM, max_size=DIM)),
    st.one_of(st.none(), st.integers(-2**31, 2**31 - 1)), st.integers(-3, 9),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), st.booleans())


def _search_request(text, image, embedding, k, mode, alpha, explain) -> pb.SearchRequest:  # noqa: ANN001
    req = pb.SearchRequest(embedding=embedding, mode=mode, explain=explain)
    if text is not None:
        req.text = text
    if image is not None:
        req.image = image
    if k is not None:
        req.k = k
    if alpha is not None:
        req.alpha = alpha
    return req


@st.composite
def mutated(draw: st.DrawFn, valid: list[bytes]) -> bytes:
    """A valid serialized request with bytes flipped, inserted, deleted or cut off."""
    data = bytearray(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at]
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate":
            data += data[at:]
    return bytes(data)


VALID = {
    "Search": [pb.SearchRequest(text="a tomato next to a school bus", k=5, explain=True).SerializeToString(),
               pb.SearchRequest(image=png_bytes("blue"), k=3).SerializeToString(),
               pb.SearchRequest(embedding=[0.1] * DIM, k=2, alpha=0.3, mode=pb.MODE_REWRITTEN).SerializeToString()],
    "BatchSearch": [pb.BatchSearchRequest(requests=[pb.SearchRequest(text="a red circle", k=2),
                                                    pb.SearchRequest(text="a school bus")]).SerializeToString()],
    "Rewrite": [pb.RewriteRequest(text="two tomatoes").SerializeToString()],
    "Info": [pb.InfoRequest().SerializeToString()],
}


def run_fuzz(channel: grpc.Channel, server: RunningServer, examples: int,
             timeout: float | None = 30.0) -> dict[str, object]:
    """`examples` requests per strategy (5 strategies), each with `timeout` (None: no deadline); returns the
    status counts and peak RSS growth."""
    stub, calls = search_pb2_grpc.SearchServiceStub(channel), Calls(timeout)
    raw = {name: channel.unary_unary(f"/evdsearch.v1.SearchService/{name}") for name in VALID}
    options = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                       suppress_health_check=list(HealthCheck))
    strategies = [
        (SEARCH, lambda req: calls.call(stub.Search, req)),
        (st.lists(SEARCH, max_size=4).map(lambda rs: pb.BatchSearchRequest(requests=rs)),
         lambda req: calls.call(stub.BatchSearch, req)),
        (st.text(max_size=1100).map(lambda t: pb.RewriteRequest(text=t)), lambda req: calls.call(stub.Rewrite, req)),
        (st.integers(0, 10**9), lambda _n: calls.call(stub.Info, pb.InfoRequest())),  # varied: hypothesis won't stop
        (st.sampled_from(sorted(VALID)).flatmap(lambda name: st.tuples(st.just(name), mutated(VALID[name]))),
         lambda pair: calls.call(raw[pair[0]], pair[1])),
    ]
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    before_kb = _rss_kb("VmRSS")
    for strategy, check in strategies:
        given(strategy)(options(check))()
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    growth_mb = (_rss_kb("VmHWM") - before_kb) / 1024
    assert growth_mb < PEAK_RSS_GROWTH_MB, growth_mb
    return {"requests": sum(calls.codes.values()), "codes": dict(calls.codes), "peak_rss_growth_mb": growth_mb}


def test_fuzz_every_rpc_short(channel: grpc.Channel, server: RunningServer) -> None:
    result = run_fuzz(channel, server, examples=40)
    assert result["requests"] >= 150 and "OK" in result["codes"] and "INVALID_ARGUMENT" in result["codes"]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("EVDSEARCH_SLOW_TESTS"), reason="set EVDSEARCH_SLOW_TESTS=1 (10,000 requests)")
def test_fuzz_every_rpc_10000(channel: grpc.Channel, server: RunningServer) -> None:
    result = run_fuzz(channel, server, examples=2000)
    print(f"\nfuzz: {result}")
    assert result["requests"] >= 9900


BAD_INPUTS = [  # (what, RPC, request, expected status): the table in docs/reliability.md
    ("no query field", "Search", pb.SearchRequest(), "INVALID_ARGUMENT"),
    ("text and image together", "Search", pb.SearchRequest(text="a", image=png_bytes()), "INVALID_ARGUMENT"),
    ("whitespace-only text", "Search", pb.SearchRequest(text="   "), "INVALID_ARGUMENT"),
    ("1,001-character text", "Search", pb.SearchRequest(text="a" * 1001), "INVALID_ARGUMENT"),
    ("k = 0", "Search", pb.SearchRequest(text="a", k=0), "INVALID_ARGUMENT"),
    ("k = 2**31-1", "Search", pb.SearchRequest(text="a", k=2**31 - 1), "INVALID_ARGUMENT"),
    ("unknown mode 7", "Search", pb.SearchRequest(text="a", mode=7), "INVALID_ARGUMENT"),
    ("alpha NaN", "Search", pb.SearchRequest(text="a", alpha=float("nan")), "INVALID_ARGUMENT"),
    ("alpha inf", "Search", pb.SearchRequest(text="a", alpha=float("inf")), "INVALID_ARGUMENT"),
    ("alpha 1.5", "Search", pb.SearchRequest(text="a", alpha=1.5), "INVALID_ARGUMENT"),
    ("embedding with NaN", "Search", pb.SearchRequest(embedding=[float("nan")] + [0.1] * (DIM - 1)), "INVALID_ARGUMENT"),
    ("embedding with inf", "Search", pb.SearchRequest(embedding=[float("inf")] + [0.1] * (DIM - 1)), "INVALID_ARGUMENT"),
    ("all-zero embedding", "Search", pb.SearchRequest(embedding=[0.0] * DIM), "INVALID_ARGUMENT"),
    ("embedding of huge floats (3e38: its squares overflow float32)", "Search",
     pb.SearchRequest(embedding=[3e38] * DIM, k=1), "OK"),
    ("embedding of the wrong dimension", "Search", pb.SearchRequest(embedding=[0.1] * 3), "INVALID_ARGUMENT"),
    ("random bytes as an image", "Search", pb.SearchRequest(image=b"not an image at all"), "INVALID_ARGUMENT"),
    ("truncated PNG", "Search", pb.SearchRequest(image=png_bytes()[:40]), "INVALID_ARGUMENT"),
    ("EPS (Ghostscript) image", "Search", pb.SearchRequest(image=b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n"),
     "INVALID_ARGUMENT"),
    ("PNG header claiming 100000x100000", "Search", pb.SearchRequest(image=png_with_size(100_000, 100_000)),
     "INVALID_ARGUMENT"),
    ("PNG header claiming 6000x5000 (30 Mpx)", "Search", pb.SearchRequest(image=png_with_size(6000, 5000)),
     "INVALID_ARGUMENT"),
    ("4,000x4,000 black PNG (16 Mpx, ~20 KB)", "Search", pb.SearchRequest(image=zero_png(4000, 4000), k=1), "OK"),
    ("4,000x3,000 JPEG (decoded at 1/4 size)", "Search", pb.SearchRequest(image=jpeg_bytes(4000, 3000), k=1), "OK"),
    ("batch of 4 x 16 Mpx PNGs (64 Mpx)", "BatchSearch",
     pb.BatchSearchRequest(requests=[pb.SearchRequest(image=zero_png(4000, 4000))] * 4), "RESOURCE_EXHAUSTED"),
    ("batch of 257 requests", "BatchSearch",
     pb.BatchSearchRequest(requests=[pb.SearchRequest(text="a")] * 257), "INVALID_ARGUMENT"),
    ("batch with one bad request", "BatchSearch",
     pb.BatchSearchRequest(requests=[pb.SearchRequest(text="a"), pb.SearchRequest(k=-1)]), "INVALID_ARGUMENT"),
    ("5 MiB message (limit 4 MiB here, 16 MiB by default)", "Search", pb.SearchRequest(image=b"\0" * (5 << 20)),
     "RESOURCE_EXHAUSTED"),
    ("empty Rewrite text", "Rewrite", pb.RewriteRequest(text=""), "INVALID_ARGUMENT"),
    ("bytes that are not a protobuf message", "Search", b"\xff\xff\xff\xff", "INVALID_ARGUMENT"),
    ("invalid UTF-8 in the text field", "Search", b"\x0a\x02\xc3\x28", "INVALID_ARGUMENT"),
]


def answer(channel: grpc.Channel, rpc: str, request: object) -> tuple[str, str]:
    """(status name, details) of one call; bytes go through a generic (serializer-less) method."""
    stub = search_pb2_grpc.SearchServiceStub(channel)
    method = channel.unary_unary(f"/evdsearch.v1.SearchService/{rpc}") if isinstance(request, bytes) \
        else getattr(stub, rpc)
    try:
        method(request, timeout=30)
        return "OK", ""
    except grpc.RpcError as err:
        return err.code().name, err.details() or ""


@pytest.mark.parametrize(("what", "rpc", "request_", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_get_a_status_and_a_message(channel: grpc.Channel, what: str, rpc: str, request_: object,
                                               expected: str) -> None:
    assert search_pb2_grpc.SearchServiceStub(channel).Info(pb.InfoRequest(), timeout=10).dim == DIM
    code, details = answer(channel, rpc, request_)
    print(f"\n| {what} | {rpc} | {code} | {details} |")  # `pytest -s -k bad_inputs`: the docs' table rows
    assert code == expected, (what, code, details)
    assert code == "OK" or details.strip()
