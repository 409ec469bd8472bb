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
    p.add_argument("--terms", metavar="JSON", help='a weighted query instead of QUERY, e.g. \'{"circle": 1, '
                                                    '"red": -0.5}\' (negative pushes away; docs/search.md)')
    p.add_argument("--like", type=int, metavar="ID", help="more like this: search with indexed image ID (excluded)")
    p.add_argument("--filter", metavar="EXPR", help='metadata filter, e.g. \'split == "test" and mtime >= '
                                                     '"2024-01-01"\' (grammar: docs/search.md)')
    p.add_argument("--min-score", type=float, metavar="S", help="only hits whose score is at least S")
    p.add_argument("--min-relative", type=float, metavar="R",
                   help="only hits scoring at least R (0..1) of the best hit's score")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip N hits (pages: 0, k, 2k, ...)")
    p.add_argument("--diversity", type=float, default=0.0, metavar="D",
                   help="MMR re-ranking, 0 (plain top-k, default) to 1 (most diverse)")
    p.add_argument("--metadata", action="store_true", help="show each hit's metadata fields")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="deadline in seconds (default 10)")
    p.add_argument("--json", action="store_true", help="print the response as JSON")
    add_client_security_options(p)
    p.set_defaults(run=run)


def build_request(args: argparse.Namespace) -> Any:
    """The protobuf request; the server validates it (one source of truth for the rules)."""
    from evdsearch.proto.convert import request_to_proto
    from evdsearch.search_api import SearchRequest

    terms = parse_terms(args.terms) if getattr(args, "terms", None) else None
    like = getattr(args, "like", None)
    if args.query is None and args.image is None and terms is None and like is None:
        raise InvalidInput("give a text query, --terms JSON, --image PATH or --like ID")
    if args.image is not None and not args.image.is_file():
        raise NotFound(f"image not found: {args.image}")
    image = args.image.read_bytes() if args.image is not None else None
    return request_to_proto(SearchRequest(
        text=args.query, image_bytes=image, k=args.k, mode=args.mode, alpha=args.alpha, explain=args.explain,
        terms=terms, like_id=like, filter=getattr(args, "filter", None), min_score=getattr(args, "min_score", None),
        min_relative=getattr(args, "min_relative", None), offset=getattr(args, "offset", 0),
        diversity=getattr(args, "diversity", 0.0), with_metadata=getattr(args, "metadata", False)))


def parse_terms(text: str) -> list[Any]:
    """`{"text": weight, ...}` (JSON) -> WeightedText list, in the order given."""
    import json

    from evdsearch.search_api import WeightedText

    try:
        given = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidInput(f"--terms must be a JSON object of text: weight, e.g. '{{\"circle\": 1, \"red\": -0.5}}' "
                           f"({err.msg})") from None
    if not isinstance(given, dict) or not given:
        raise InvalidInput("--terms must be a non-empty JSON object of text: weight")
    for key, weight in given.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise InvalidInput(f"--terms: the weight of {key!r} must be a number, not {weight!r}")
    return [WeightedText(key, float(weight)) for key, weight in given.items()]


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
        shown = args.query or args.terms or (f"like image {args.like}" if args.like is not None else str(args.image))
        print_response(resp, query=shown, explain=args.explain)
    return 0
