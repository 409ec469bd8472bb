"""`evdsearch info` and `evdsearch reload`: what a running server has loaded, and a hot reload of it."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.errors import InvalidInput


def _call(args: argparse.Namespace, method: str) -> Any:
    """One unary call on SearchService.Info or AdminService.Reload, failures as one clear line."""
    import grpc

    from evdsearch.client.channel import open_channel, security_from_args
    from evdsearch.client.search_cli import explain_rpc_error
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    if args.timeout <= 0:
        raise InvalidInput(f"--timeout must be positive, got {args.timeout}")
    security = security_from_args(args)
    with open_channel(args.server, security) as channel:
        try:
            if method == "info":
                return search_pb2_grpc.SearchServiceStub(channel).Info(pb.InfoRequest(), timeout=args.timeout)
            return search_pb2_grpc.AdminServiceStub(channel).Reload(pb.ReloadRequest(), timeout=args.timeout)
        except grpc.RpcError as err:
            raise explain_rpc_error(err, args.server, args.timeout, tls=security.tls_ca is not None) from None


def run_info(args: argparse.Namespace) -> int:
    from evdsearch.client.render import print_json

    info = _call(args, "info")
    if args.json:
        print_json(info)
        return 0
    print(f"generation {info.generation} (loaded {info.loaded_at}): {info.index_size} images "
          f"({info.index_factory}, dim {info.dim}), {info.kb_entities} entities / {info.kb_descriptions} "
          f"descriptions, rewriter {info.rewriter}, model {info.model} on {info.device}, evdsearch {info.version}")
    return 0


def run_reload(args: argparse.Namespace) -> int:
    from evdsearch.client.targets import grpc_target

    if grpc_target(args.server).replicas:  # round robin would reload just one of them
        raise InvalidInput(f"--server {args.server} names several servers; reload each replica on its own "
                           f"(evdsearch reload --server HOST:PORT)")
    answer = _call(args, "reload")
    print(f"reloaded in {answer.seconds:.1f} s: generation {answer.generation} (loaded {answer.loaded_at}), "
          f"{answer.index_size} images, {answer.kb_entities} entities")
    return 0


def _common(p: argparse.ArgumentParser, timeout: float) -> None:
    from evdsearch.client.channel import add_client_security_options

    p.add_argument("--server", default="localhost:50051",
                   help="HOST:PORT of the server (info: also HOST:PORT,HOST:PORT,... for replicas; default "
                        "localhost:50051)")
    p.add_argument("--timeout", type=float, default=timeout, metavar="S", help=f"deadline in seconds (default {timeout:g})")
    add_client_security_options(p)  # --tls-ca, --token-file (or EVDSEARCH_TOKEN), mutual TLS


def register(tree: Any) -> None:
    p = tree.add(None, "info", help="what a running `evdsearch serve` has loaded (generation, index size, KB)")
    _common(p, 10.0)
    p.add_argument("--json", action="store_true", help="print the InfoResponse as JSON")
    p.set_defaults(run=run_info)
    p = tree.add(None, "reload", help="hot-reload a running server's index, KB and rewriter (like kill -HUP)")
    _common(p, 300.0)
    p.set_defaults(run=run_reload)
