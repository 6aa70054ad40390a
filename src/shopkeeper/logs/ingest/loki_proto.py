"""Loki's push protobuf (`pkg/push/push.proto`, package `logproto`), built from a descriptor
at import: no protoc, no generated code to keep in sync.

    message PushRequest { repeated StreamAdapter streams = 1; }
    message StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    message EntryAdapter {
      google.protobuf.Timestamp timestamp = 1; string line = 2;
      repeated LabelPairAdapter structuredMetadata = 3;
    }
    message LabelPairAdapter { string name = 1; string value = 2; }
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> Any:
    file = descriptor_pb2.FileDescriptorProto(
        name="shopkeeper/loki_push.proto",
        package="logproto",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        proto = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            added = proto.field.add(
                name=field_name,
                number=number,
                type=kind,
                label=label,
                json_name=field_name,
            )
            if type_name:
                added.type_name = type_name

    optional, repeated = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message(
        "LabelPairAdapter",
        ("name", 1, _F.TYPE_STRING, optional, ""),
        ("value", 2, _F.TYPE_STRING, optional, ""),
    )
    message(
        "EntryAdapter",
        ("timestamp", 1, _F.TYPE_MESSAGE, optional, ".google.protobuf.Timestamp"),
        ("line", 2, _F.TYPE_STRING, optional, ""),
        ("structuredMetadata", 3, _F.TYPE_MESSAGE, repeated, ".logproto.LabelPairAdapter"),
    )
    message(
        "StreamAdapter",
        ("labels", 1, _F.TYPE_STRING, optional, ""),
        ("entries", 2, _F.TYPE_MESSAGE, repeated, ".logproto.EntryAdapter"),
        ("hash", 3, _F.TYPE_UINT64, optional, ""),
    )
    message("PushRequest", ("streams", 1, _F.TYPE_MESSAGE, repeated, ".logproto.StreamAdapter"))
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest: Any = _build()
