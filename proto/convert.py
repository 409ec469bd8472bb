"""Protobuf <-> search API mapping, written once: the servicer, `evdsearch search` and the demo all use it."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone
from typing import Any

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
    TermExplanation,
    WeightedText,
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
        terms=[WeightedText(t.text, t.weight) for t in msg.terms] or None,
        filter=msg.filter if msg.HasField("filter") else None,
        min_score=msg.min_score if msg.HasField("min_score") else None,
        min_relative=msg.min_relative if msg.HasField("min_relative") else None,
        offset=msg.offset,
        diversity=msg.diversity if msg.HasField("diversity") else 0.0,
        like_id=msg.like_id if msg.HasField("like_id") else None,
        with_metadata=msg.with_metadata,
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
    for term in req.terms or []:
        msg.terms.add(text=term.text, weight=term.weight)
    for name in ("filter", "min_score", "min_relative", "like_id"):
        if getattr(req, name) is not None:
            setattr(msg, name, getattr(req, name))
    if req.diversity:
        msg.diversity = req.diversity
    msg.offset, msg.with_metadata = req.offset, req.with_metadata
    return msg


def value_to_proto(value: Any) -> pb.MetadataValue:
    """A metadata value (as Hit.metadata holds it) in its typed slot; a datetime as ISO 8601 UTC ("...Z")."""
    if isinstance(value, datetime):
        return pb.MetadataValue(datetime_value=value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"))
    if isinstance(value, bool):
        return pb.MetadataValue(bool_value=value)
    if isinstance(value, int):
        return pb.MetadataValue(int_value=value)
    if isinstance(value, float):
        return pb.MetadataValue(float_value=value)
    return pb.MetadataValue(string_value=str(value))


def value_from_proto(msg: pb.MetadataValue) -> Any:
    kind = msg.WhichOneof("value")
    if kind == "datetime_value":
        return datetime.fromisoformat(msg.datetime_value.replace("Z", "+00:00"))
    return getattr(msg, kind) if kind else None


def entity_to_proto(mention: EntityMention) -> pb.Entity:
    return pb.Entity(name=mention.entity, text=mention.text, start=mention.start, end=mention.end)


def descriptions_to_proto(descriptions: dict) -> list[pb.EntityDescriptions]:
    return [pb.EntityDescriptions(entity=entity, descriptions=[
        pb.Description(text=d.text, source=d.source, score=d.score) for d in found])
        for entity, found in descriptions.items()]


def response_to_proto(resp: SearchResponse) -> pb.SearchResponse:
    out = pb.SearchResponse(hits=[
        pb.Hit(id=h.id, uri=h.uri, score=h.score, original_score=h.original_score,
               rewritten_score=h.rewritten_score, captions=h.captions,
               metadata={k: value_to_proto(v) for k, v in h.metadata.items()}) for h in resp.hits])
    if resp.explanation is not None:
        ex = resp.explanation
        out.explanation.CopyFrom(pb.Explanation(
            entities=[entity_to_proto(m) for m in ex.entities],
            descriptions=descriptions_to_proto(ex.descriptions),
            rewritten_query=ex.rewritten_query, timings_ms=ex.timings_ms, alpha=ex.alpha,
            rewrite_variants=ex.rewrite_variants, filter=ex.filter, filter_matches=ex.filter_matches,
            search_plan=ex.search_plan,
            terms=[pb.TermExplanation(text=t.text, weight=t.weight, rewritten_query=t.rewritten_query,
                                      alpha=t.alpha, entities=t.entities) for t in ex.terms]))
    return out


def explanation_from_proto(msg: pb.Explanation) -> Explanation:
    return Explanation(
        entities=[EntityMention(entity=e.name, text=e.text, start=e.start, end=e.end) for e in msg.entities],
        descriptions={group.entity: [Description(text=d.text, source=d.source, score=d.score)
                                     for d in group.descriptions] for group in msg.descriptions},
        rewritten_query=msg.rewritten_query, timings_ms=dict(msg.timings_ms),
        alpha=msg.alpha if msg.HasField("alpha") else None, rewrite_variants=list(msg.rewrite_variants),
        terms=[TermExplanation(text=t.text, weight=t.weight, rewritten_query=t.rewritten_query,
                               alpha=t.alpha if t.HasField("alpha") else None, entities=list(t.entities))
               for t in msg.terms],
        filter=msg.filter, filter_matches=msg.filter_matches if msg.HasField("filter_matches") else None,
        search_plan=msg.search_plan)


def response_from_proto(msg: pb.SearchResponse) -> SearchResponse:
    hits = [Hit(id=h.id, uri=h.uri, score=h.score, original_score=h.original_score,
                rewritten_score=h.rewritten_score, captions=list(h.captions),
                metadata={k: value_from_proto(v) for k, v in sorted(h.metadata.items())}) for h in msg.hits]
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
    values = {f.name: getattr(msg, f.name) for f in fields(EngineInfo)}
    values["metadata_fields"] = list(msg.metadata_fields)
    return EngineInfo(**values)
