from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_FUSED: _ClassVar[Mode]
    MODE_ORIGINAL: _ClassVar[Mode]
    MODE_REWRITTEN: _ClassVar[Mode]
MODE_UNSPECIFIED: Mode
MODE_FUSED: Mode
MODE_ORIGINAL: Mode
MODE_REWRITTEN: Mode

class SearchRequest(_message.Message):
    __slots__ = ("text", "image", "embedding", "k", "mode", "alpha", "explain", "terms", "filter", "min_score", "min_relative", "offset", "diversity", "like_id", "with_metadata")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MIN_RELATIVE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    LIKE_ID_FIELD_NUMBER: _ClassVar[int]
    WITH_METADATA_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: bytes
    embedding: _containers.RepeatedScalarFieldContainer[float]
    k: int
    mode: Mode
    alpha: float
    explain: bool
    terms: _containers.RepeatedCompositeFieldContainer[WeightedText]
    filter: str
    min_score: float
    min_relative: float
    offset: int
    diversity: float
    like_id: int
    with_metadata: bool
    def __init__(self, text: _Optional[str] = ..., image: _Optional[bytes] = ..., embedding: _Optional[_Iterable[float]] = ..., k: _Optional[int] = ..., mode: _Optional[_Union[Mode, str]] = ..., alpha: _Optional[float] = ..., explain: _Optional[bool] = ..., terms: _Optional[_Iterable[_Union[WeightedText, _Mapping]]] = ..., filter: _Optional[str] = ..., min_score: _Optional[float] = ..., min_relative: _Optional[float] = ..., offset: _Optional[int] = ..., diversity: _Optional[float] = ..., like_id: _Optional[int] = ..., with_metadata: _Optional[bool] = ...) -> None: ...

class WeightedText(_message.Message):
    __slots__ = ("text", "weight")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    text: str
    weight: float
    def __init__(self, text: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class MetadataValue(_message.Message):
    __slots__ = ("int_value", "float_value", "string_value", "bool_value", "datetime_value")
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATETIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    int_value: int
    float_value: float
    string_value: str
    bool_value: bool
    datetime_value: str
    def __init__(self, int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., datetime_value: _Optional[str] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("id", "uri", "score", "original_score", "rewritten_score", "captions", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: MetadataValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MetadataValue, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_SCORE_FIELD_NUMBER: _ClassVar[int]
    CAPTIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: int
    uri: str
    score: float
    original_score: float
    rewritten_score: float
    captions: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.MessageMap[str, MetadataValue]
    def __init__(self, id: _Optional[int] = ..., uri: _Optional[str] = ..., score: _Optional[float] = ..., original_score: _Optional[float] = ..., rewritten_score: _Optional[float] = ..., captions: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, MetadataValue]] = ...) -> None: ...

class Entity(_message.Message):
    __slots__ = ("name", "text", "start", "end")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    start: int
    end: int
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class Description(_message.Message):
    __slots__ = ("text", "source", "score")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    text: str
    source: str
    score: float
    def __init__(self, text: _Optional[str] = ..., source: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class EntityDescriptions(_message.Message):
    __slots__ = ("entity", "descriptions")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    entity: str
    descriptions: _containers.RepeatedCompositeFieldContainer[Description]
    def __init__(self, entity: _Optional[str] = ..., descriptions: _Optional[_Iterable[_Union[Description, _Mapping]]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("entities", "descriptions", "rewritten_query", "timings_ms", "alpha", "rewrite_variants", "terms", "filter", "filter_matches", "search_plan")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUERY_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    REWRITE_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FILTER_MATCHES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_PLAN_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    descriptions: _containers.RepeatedCompositeFieldContainer[EntityDescriptions]
    rewritten_query: str
    timings_ms: _containers.ScalarMap[str, float]
    alpha: float
    rewrite_variants: _containers.RepeatedScalarFieldContainer[str]
    terms: _containers.RepeatedCompositeFieldContainer[TermExplanation]
    filter: str
    filter_matches: int
    search_plan: str
    def __init__(self, entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., descriptions: _Optional[_Iterable[_Union[EntityDescriptions, _Mapping]]] = ..., rewritten_query: _Optional[str] = ..., timings_ms: _Optional[_Mapping[str, float]] = ..., alpha: _Optional[float] = ..., rewrite_variants: _Optional[_Iterable[str]] = ..., terms: _Optional[_Iterable[_Union[TermExplanation, _Mapping]]] = ..., filter: _Optional[str] = ..., filter_matches: _Optional[int] = ..., search_plan: _Optional[str] = ...) -> None: ...

class TermExplanation(_message.Message):
    __slots__ = ("text", "weight", "rewritten_query", "alpha", "entities")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUERY_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    text: str
    weight: float
    rewritten_query: str
    alpha: float
    entities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, text: _Optional[str] = ..., weight: _Optional[float] = ..., rewritten_query: _Optional[str] = ..., alpha: _Optional[float] = ..., entities: _Optional[_Iterable[str]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "explanation")
    HITS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    explanation: Explanation
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class BatchSearchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SearchRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[SearchRequest, _Mapping]]] = ...) -> None: ...

class BatchSearchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[SearchResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[SearchResponse, _Mapping]]] = ...) -> None: ...

class RewriteRequest(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class RewriteResponse(_message.Message):
    __slots__ = ("query", "rewritten", "entities", "descriptions", "rewriter", "rewrite_variants")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    REWRITER_FIELD_NUMBER: _ClassVar[int]
    REWRITE_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    query: str
    rewritten: str
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    descriptions: _containers.RepeatedCompositeFieldContainer[EntityDescriptions]
    rewriter: str
    rewrite_variants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, query: _Optional[str] = ..., rewritten: _Optional[str] = ..., entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., descriptions: _Optional[_Iterable[_Union[EntityDescriptions, _Mapping]]] = ..., rewriter: _Optional[str] = ..., rewrite_variants: _Optional[_Iterable[str]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("model", "pretrained", "fingerprint", "dim", "index_size", "index_factory", "kb_entities", "kb_descriptions", "rewriter", "default_alpha", "device", "version", "generation", "loaded_at", "text_cache_hits", "text_cache_misses", "text_cache_size", "text_cache_capacity", "metadata_fields", "max_depth")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FACTORY_FIELD_NUMBER: _ClassVar[int]
    KB_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    KB_DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    REWRITER_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ALPHA_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    TEXT_CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    TEXT_CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    TEXT_CACHE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TEXT_CACHE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    model: str
    pretrained: str
    fingerprint: str
    dim: int
    index_size: int
    index_factory: str
    kb_entities: int
    kb_descriptions: int
    rewriter: str
    default_alpha: float
    device: str
    version: str
    generation: int
    loaded_at: str
    text_cache_hits: int
    text_cache_misses: int
    text_cache_size: int
    text_cache_capacity: int
    metadata_fields: _containers.RepeatedScalarFieldContainer[str]
    max_depth: int
    def __init__(self, model: _Optional[str] = ..., pretrained: _Optional[str] = ..., fingerprint: _Optional[str] = ..., dim: _Optional[int] = ..., index_size: _Optional[int] = ..., index_factory: _Optional[str] = ..., kb_entities: _Optional[int] = ..., kb_descriptions: _Optional[int] = ..., rewriter: _Optional[str] = ..., default_alpha: _Optional[float] = ..., device: _Optional[str] = ..., version: _Optional[str] = ..., generation: _Optional[int] = ..., loaded_at: _Optional[str] = ..., text_cache_hits: _Optional[int] = ..., text_cache_misses: _Optional[int] = ..., text_cache_size: _Optional[int] = ..., text_cache_capacity: _Optional[int] = ..., metadata_fields: _Optional[_Iterable[str]] = ..., max_depth: _Optional[int] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("generation", "loaded_at", "index_size", "kb_entities", "seconds")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    KB_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    generation: int
    loaded_at: str
    index_size: int
    kb_entities: int
    seconds: float
    def __init__(self, generation: _Optional[int] = ..., loaded_at: _Optional[str] = ..., index_size: _Optional[int] = ..., kb_entities: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...
