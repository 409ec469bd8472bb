"""Protobuf <-> engine API conversion for the gRPC servicer and the search CLI (no logic of its own)."""

from __future__ import annotations

from evdsearch.engine.api import (
    EngineInfo,
    EntityMention,
    RewriteResult,
    SearchRequest,
    SearchResponse,
)
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb

DEFAULT_K = 10  # when a request leaves k unset
MODE_FROM_PROTO = {pb.MODE_UNSPECIFIED: "fused", pb.MODE_FUSED: "fused", pb.MODE_ORIGINAL: "original",
                   pb.MODE_REWRITTEN: "rewritten"}
MODE_TO_PROTO = {"fused": pb.MODE_FUSED, "original": pb.MODE_ORIGINAL, "rewritten": pb.MODE_REWRITTEN}


def request_from_proto(msg: pb.SearchRequest) -> SearchRequest:
    """Unset optional fields become the engine's defaults; an unknown mode number is kept for validation."""
    return SearchRequest(
        text=msg.text if msg.HasField("text") else None,
        image_bytes=msg.image if msg.HasField("image") else None,
        embedding=list(msg.embedding) or None,
        k=msg.k if msg.HasField("k") else DEFAULT_K,
        mode=MODE_FROM_PROTO.get(msg.mode, f"mode number {msg.mode}"),
        alpha=msg.alpha if msg.HasField("alpha") else None,
        explain=msg.explain,
    )


def entity_to_proto(mention: EntityMention) -> pb.Entity:
    return pb.Entity(name=mention.entity, text=mention.text, start=mention.start, end=mention.end)


def descriptions_to_proto(descriptions: dict) -> list[pb.EntityDescriptions]:
    return [pb.EntityDescriptions(entity=entity, descriptions=[
        pb.Description(text=d.text, source=d.source, score=d.score) for d in found])
        for entity, found in descriptions.items()]


def response_to_proto(resp: SearchResponse) -> pb.SearchResponse:
    out = pb.SearchResponse(hits=[
        pb.Hit(id=h.id, uri=h.uri, score=h.score, original_score=h.original_score,
               rewritten_score=h.rewritten_score, captions=h.captions) for h in resp.hits])
    if resp.explanation is not None:
        ex = resp.explanation
        out.explanation.CopyFrom(pb.Explanation(
            entities=[entity_to_proto(m) for m in ex.entities],
            descriptions=descriptions_to_proto(ex.descriptions),
            rewritten_query=ex.rewritten_query, timings_ms=ex.timings_ms, alpha=ex.alpha,
            rewrite_variants=ex.rewrite_variants))
    return out


def rewrite_to_proto(result: RewriteResult, rewriter: str) -> pb.RewriteResponse:
    return pb.RewriteResponse(query=result.query, rewritten=result.rewritten,
                              entities=[entity_to_proto(m) for m in result.mentions],
                              descriptions=descriptions_to_proto(result.descriptions), rewriter=rewriter,
                              rewrite_variants=result.variants)


def info_to_proto(info: EngineInfo) -> pb.InfoResponse:
    return pb.InfoResponse(**vars(info))
