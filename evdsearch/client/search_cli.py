"""`evdsearch search`: query a running `evdsearch serve` over gRPC and print the hits."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evdsearch.client.channel import add_client_security_options
from evdsearch.errors import InvalidInput, NotFound, UserError
from evdsearch.search_api import MODES


class ServerUnreachable(UserError):
    """No answer from the server (not running, wrong address, or too slow for the deadline)."""

    exit_code = 3


def register(tree: Any) -> None:
    p = tree.add(None, "search", help="search a running `evdsearch serve` (text or image query)")
    p.add_argument("query", nargs="?", help="text query, e.g. \"a tomato next to a school bus\"")
    p.add_argument("--server", default="localhost:50051",
                   help="HOST:PORT of the server, or HOST:PORT,HOST:PORT,... (or dns:///NAME:PORT) for replicas: "
                        "round robin over the healthy ones, failed calls retried on another (default "
                        "localhost:50051)")
    p.add_argument("-k", type=int, default=10, help="hits to show (1..1000, default 10)")
    p.add_argument("--mode", choices=MODES, default="fused", help="score by the fused (default), original or "
                                                                  "rewritten query")
    p.add_argument("--alpha", type=float, help="weight of the rewritten query in [0, 1] (default: the server's)")
    p.add_argument("--explain", action="store_true", help="show entities, descriptions, rewrite and timings")
    p.add_argument("--image", type=Path, metavar="PATH", help="search with an image instead of text")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="deadline in seconds (default 10)")
    p.add_argument("--json", action="store_true", help="print the response as JSON")
    add_client_security_options(p)
    p.set_defaults(run=run)


def build_request(args: argparse.Namespace) -> Any:
    """The protobuf request; the server validates it (one source of truth for the rules)."""
    from evdsearch.proto.convert import request_to_proto
    from evdsearch.search_api import SearchRequest

    if args.query is None and args.image is None:
        raise InvalidInput("give a text query or --image PATH")
    if args.image is not None and not args.image.is_file():
        raise NotFound(f"image not found: {args.image}")
    image = args.image.read_bytes() if args.image is not None else None
    return request_to_proto(SearchRequest(text=args.query, image_bytes=image, k=args.k, mode=args.mode,
                                          alpha=args.alpha, explain=args.explain))


def explain_rpc_error(err: Any, server: str, timeout: float, tls: bool | None = None) -> UserError:
    """One clear line for a failed call (`tls`: whether the channel used TLS, when known, for a hint)."""
    import grpc

    code, details = err.code(), err.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE and details.startswith("Milvus at "):  # the server is up, its store not
        return ServerUnreachable(f"the server at {server} cannot answer right now: {details}")
    if code == grpc.StatusCode.UNAVAILABLE:
        hint = " If it serves TLS, pass --tls-ca FILE." if tls is False else ""
        return ServerUnreachable(f"cannot reach a server at {server} ({details.splitlines()[0] if details else 'unavailable'}); "
                                 f"is `evdsearch serve` running there?{hint}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ServerUnreachable(f"no answer from {server} within {timeout:g} s (deadline exceeded); "
                                 f"try a larger --timeout")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(f"the server refused the request: {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return UserError(f"the server at {server} refused the call (UNAUTHENTICATED: {details}); "
                         f"pass --token-file FILE or set EVDSEARCH_TOKEN")
    return UserError(f"the server answered {code.name}: {details}")


def run(args: argparse.Namespace) -> int:
    import grpc

    from evdsearch.client.channel import open_channel, security_from_args
    from evdsearch.client.render import print_json, print_response
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    if args.timeout <= 0:
        raise InvalidInput(f"--timeout must be positive, got {args.timeout}")
    req = build_request(args)
    security = security_from_args(args)
    with open_channel(args.server, security) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        try:
            resp = stub.Search(req, timeout=args.timeout)
        except grpc.RpcError as err:
            raise explain_rpc_error(err, args.server, args.timeout, tls=security.tls_ca is not None) from None
    if args.json:
        print_json(resp)
    else:
        print_response(resp, query=args.query or str(args.image), explain=args.explain)
    return 0
