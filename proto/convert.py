"""Protobuf <-> search API mapping, written once: the servicer, `evdsearch search` and the demo all use it."""

from __future__ import annotations

from dataclasses import fields

from evdsearch.errors import InvalidInput
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.search_api import (
    DEFAULT_K,
    MODES,
    Description,
    EngineInfo,
    EntityMention,
    Explanation,
    Hit,
    RewriteResult,
    SearchRequest,
    SearchResponse,
)

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


def request_to_proto(req: SearchRequest) -> pb.SearchRequest:
    """The protobuf form of a request; the server validates the values (one source of truth for the rules)."""
    if req.mode not in MODE_TO_PROTO:
        raise InvalidInput(f"unknown mode {req.mode!r}: use one of {', '.join(MODES)}")
    msg = pb.SearchRequest(k=req.k, mode=MODE_TO_PROTO[req.mode], explain=req.explain)
    if req.text is not None:
        msg.text = req.text
    if req.image_bytes is not None:
        msg.image = bytes(req.image_bytes)
    if req.embedding is not None:
        msg.embedding.extend(float(x) for x in req.embedding)
    if req.alpha is not None:
        msg.alpha = req.alpha
    return msg


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


def explanation_from_proto(msg: pb.Explanation) -> Explanation:
    return Explanation(
        entities=[EntityMention(entity=e.name, text=e.text, start=e.start, end=e.end) for e in msg.entities],
        descriptions={group.entity: [Description(text=d.text, source=d.source, score=d.score)
                                     for d in group.descriptions] for group in msg.descriptions},
        rewritten_query=msg.rewritten_query, timings_ms=dict(msg.timings_ms),
        alpha=msg.alpha if msg.HasField("alpha") else None, rewrite_variants=list(msg.rewrite_variants))


def response_from_proto(msg: pb.SearchResponse) -> SearchResponse:
    hits = [Hit(id=h.id, uri=h.uri, score=h.score, original_score=h.original_score,
                rewritten_score=h.rewritten_score, captions=list(h.captions)) for h in msg.hits]
    explanation = explanation_from_proto(msg.explanation) if msg.HasField("explanation") else None
    return SearchResponse(hits=hits, explanation=explanation)


def rewrite_to_proto(result: RewriteResult, rewriter: str) -> pb.RewriteResponse:
    return pb.RewriteResponse(query=result.query, rewritten=result.rewritten,
                              entities=[entity_to_proto(m) for m in result.mentions],
                              descriptions=descriptions_to_proto(result.descriptions), rewriter=rewriter,
                              rewrite_variants=result.variants)


def info_to_proto(info: EngineInfo) -> pb.InfoResponse:
    return pb.InfoResponse(**vars(info))


def info_from_proto(msg: pb.InfoResponse) -> EngineInfo:
    return EngineInfo(**{f.name: getattr(msg, f.name) for f in fields(EngineInfo)})
