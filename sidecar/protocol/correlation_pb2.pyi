from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProtocolVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_VERSION_UNSPECIFIED: _ClassVar[ProtocolVersion]
    PROTOCOL_VERSION_1: _ClassVar[ProtocolVersion]

class Signal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_UNSPECIFIED: _ClassVar[Signal]
    SIGNAL_SPANS: _ClassVar[Signal]
    SIGNAL_LOGS: _ClassVar[Signal]
    SIGNAL_METRICS: _ClassVar[Signal]

class ValueType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALUE_TYPE_EMPTY: _ClassVar[ValueType]
    VALUE_TYPE_STRING: _ClassVar[ValueType]
    VALUE_TYPE_BOOL: _ClassVar[ValueType]
    VALUE_TYPE_INT: _ClassVar[ValueType]
    VALUE_TYPE_DOUBLE: _ClassVar[ValueType]
    VALUE_TYPE_BYTES: _ClassVar[ValueType]
    VALUE_TYPE_ARRAY: _ClassVar[ValueType]
    VALUE_TYPE_KVLIST: _ClassVar[ValueType]
PROTOCOL_VERSION_UNSPECIFIED: ProtocolVersion
PROTOCOL_VERSION_1: ProtocolVersion
SIGNAL_UNSPECIFIED: Signal
SIGNAL_SPANS: Signal
SIGNAL_LOGS: Signal
SIGNAL_METRICS: Signal
VALUE_TYPE_EMPTY: ValueType
VALUE_TYPE_STRING: ValueType
VALUE_TYPE_BOOL: ValueType
VALUE_TYPE_INT: ValueType
VALUE_TYPE_DOUBLE: ValueType
VALUE_TYPE_BYTES: ValueType
VALUE_TYPE_ARRAY: ValueType
VALUE_TYPE_KVLIST: ValueType

class HelloRequest(_message.Message):
    __slots__ = ("protocol_version", "client")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    client: str
    def __init__(self, protocol_version: _Optional[int] = ..., client: _Optional[str] = ...) -> None: ...

class HelloResponse(_message.Message):
    __slots__ = ("protocol_version", "spec_version", "projection", "drift_kind_names", "max_request_bytes")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    DRIFT_KIND_NAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    spec_version: str
    projection: Projection
    drift_kind_names: _containers.RepeatedScalarFieldContainer[str]
    max_request_bytes: int
    def __init__(self, protocol_version: _Optional[int] = ..., spec_version: _Optional[str] = ..., projection: _Optional[_Union[Projection, _Mapping]] = ..., drift_kind_names: _Optional[_Iterable[str]] = ..., max_request_bytes: _Optional[int] = ...) -> None: ...

class Projection(_message.Message):
    __slots__ = ("version", "all_attributes", "attribute_keys")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALL_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_KEYS_FIELD_NUMBER: _ClassVar[int]
    version: int
    all_attributes: bool
    attribute_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., all_attributes: _Optional[bool] = ..., attribute_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class Attributes(_message.Message):
    __slots__ = ("counts", "keys", "values", "value_types")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPES_FIELD_NUMBER: _ClassVar[int]
    counts: bytes
    keys: bytes
    values: bytes
    value_types: bytes
    def __init__(self, counts: _Optional[bytes] = ..., keys: _Optional[bytes] = ..., values: _Optional[bytes] = ..., value_types: _Optional[bytes] = ...) -> None: ...

class CorrelateRequest(_message.Message):
    __slots__ = ("protocol_version", "signal", "rows", "projection_version", "strings", "resource_first_row", "resource_attributes", "trace_id", "span_id", "parent_span_id", "start_time_unix_nano", "end_time_unix_nano", "kind", "status_code", "severity_number", "name", "event_name", "body", "value", "exemplar_trace_id", "exemplar_span_id", "attributes")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    STRINGS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIRST_ROW_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    END_TIME_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    signal: Signal
    rows: int
    projection_version: int
    strings: _containers.RepeatedScalarFieldContainer[str]
    resource_first_row: bytes
    resource_attributes: Attributes
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    start_time_unix_nano: bytes
    end_time_unix_nano: bytes
    kind: bytes
    status_code: bytes
    severity_number: bytes
    name: bytes
    event_name: bytes
    body: bytes
    value: bytes
    exemplar_trace_id: bytes
    exemplar_span_id: bytes
    attributes: Attributes
    def __init__(self, protocol_version: _Optional[int] = ..., signal: _Optional[_Union[Signal, str]] = ..., rows: _Optional[int] = ..., projection_version: _Optional[int] = ..., strings: _Optional[_Iterable[str]] = ..., resource_first_row: _Optional[bytes] = ..., resource_attributes: _Optional[_Union[Attributes, _Mapping]] = ..., trace_id: _Optional[bytes] = ..., span_id: _Optional[bytes] = ..., parent_span_id: _Optional[bytes] = ..., start_time_unix_nano: _Optional[bytes] = ..., end_time_unix_nano: _Optional[bytes] = ..., kind: _Optional[bytes] = ..., status_code: _Optional[bytes] = ..., severity_number: _Optional[bytes] = ..., name: _Optional[bytes] = ..., event_name: _Optional[bytes] = ..., body: _Optional[bytes] = ..., value: _Optional[bytes] = ..., exemplar_trace_id: _Optional[bytes] = ..., exemplar_span_id: _Optional[bytes] = ..., attributes: _Optional[_Union[Attributes, _Mapping]] = ...) -> None: ...

class CorrelateResponse(_message.Message):
    __slots__ = ("protocol_version", "spec_version", "rows", "projection", "strings", "spec_node_id", "context", "match_type", "confidence", "correlation_status", "drift_score", "drift_level", "drift_class", "drift_kinds", "rule_counts", "rule_ids", "evidence_id")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    STRINGS_FIELD_NUMBER: _ClassVar[int]
    SPEC_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    MATCH_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SCORE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_LEVEL_FIELD_NUMBER: _ClassVar[int]
    DRIFT_CLASS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_KINDS_FIELD_NUMBER: _ClassVar[int]
    RULE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_ID_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    spec_version: str
    rows: int
    projection: Projection
    strings: _containers.RepeatedScalarFieldContainer[str]
    spec_node_id: bytes
    context: bytes
    match_type: bytes
    confidence: bytes
    correlation_status: bytes
    drift_score: bytes
    drift_level: bytes
    drift_class: bytes
    drift_kinds: bytes
    rule_counts: bytes
    rule_ids: bytes
    evidence_id: bytes
    def __init__(self, protocol_version: _Optional[int] = ..., spec_version: _Optional[str] = ..., rows: _Optional[int] = ..., projection: _Optional[_Union[Projection, _Mapping]] = ..., strings: _Optional[_Iterable[str]] = ..., spec_node_id: _Optional[bytes] = ..., context: _Optional[bytes] = ..., match_type: _Optional[bytes] = ..., confidence: _Optional[bytes] = ..., correlation_status: _Optional[bytes] = ..., drift_score: _Optional[bytes] = ..., drift_level: _Optional[bytes] = ..., drift_class: _Optional[bytes] = ..., drift_kinds: _Optional[bytes] = ..., rule_counts: _Optional[bytes] = ..., rule_ids: _Optional[bytes] = ..., evidence_id: _Optional[bytes] = ...) -> None: ...
