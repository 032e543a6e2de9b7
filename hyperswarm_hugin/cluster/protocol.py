"""The messages that cross a cluster's actor system: versioned msgpack maps (docs/remote-protocol.md).

A client needs only thespian and msgpack: it sends ``encode({...})`` bytes to the cluster's
supervisor and gets bytes back.  Every request carries ``v`` (VERSION), ``type`` and an ``id``
its reply echoes; replies are ``{"type": "reply", "id", "result"}`` or ``{"type": "error",
"id", "error"}``; events pushed to a subscriber are ``{"type": "event", "event", ...}``.
"""

from __future__ import annotations

from typing import Any

import msgpack

VERSION = 1

# type -> {field: expected python type(s)}; every request also has "id" (int) and may name a "node".
REQUESTS: dict[str, dict[str, tuple[type, ...]]] = {
    "status": {},
    "nodes": {},
    "systems": {},
    "join": {"topic": (bytes,), "server": (bool,), "client": (bool,)},
    "leave": {"topic": (bytes,)},
    "join_peer": {"public_key": (bytes,)},
    "leave_peer": {"public_key": (bytes,)},
    "peers": {},
    "ban": {"public_key": (bytes,), "banned": (bool,)},
    "subscribe": {},
    "unsubscribe": {},
    "write": {"conn": (int,), "data": (bytes,)},
    "end": {"conn": (int,)},
    "close": {"conn": (int,)},
}
NODE_REQUESTS = set(REQUESTS) - {"nodes", "systems"}


class ProtocolError(ValueError):
    """A request that is not one: the reply says why."""


def encode(message: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb({"v": VERSION, **message}, use_bin_type=True)
    return packed


def decode(data: Any) -> dict[str, Any]:
    """A checked request map, or ProtocolError naming what is wrong."""
    if not isinstance(data, bytes | bytearray):
        raise ProtocolError(f"a request is msgpack bytes, got {type(data).__name__}")
    try:
        message = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise ProtocolError(f"not msgpack: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a request is a msgpack map")
    if message.get("v") != VERSION:
        raise ProtocolError(f"unsupported version {message.get('v')!r}; this node speaks v{VERSION}")
    kind = message.get("type")
    if kind not in REQUESTS:
        raise ProtocolError(f"unknown request type {kind!r}")
    if not isinstance(message.get("id"), int) or isinstance(message.get("id"), bool):
        raise ProtocolError("a request needs an integer id")
    for name, types in REQUESTS[kind].items():
        if name not in message:
            raise ProtocolError(f"{kind} needs the field {name!r}")
        value = message[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ProtocolError(f"{kind}.{name} must be {' or '.join(t.__name__ for t in types)}")
    if "topic" in message and len(message["topic"]) != 32:
        raise ProtocolError("a topic is 32 bytes")
    if "public_key" in message and len(message["public_key"]) != 32:
        raise ProtocolError("a public key is 32 bytes")
    if "node" in message and not isinstance(message["node"], str):
        raise ProtocolError("node must be text")
    return message


def decode_event(data: bytes) -> dict[str, Any]:
    """Any map a node or the supervisor sent (reply, error, event)."""
    message = msgpack.unpackb(data, raw=False)
    if not isinstance(message, dict):
        raise ProtocolError("expected a msgpack map")
    return message


def request_id(data: Any) -> int | None:
    """The id of a request that failed to decode, if it can be read at all (for the error reply)."""
    try:
        message = msgpack.unpackb(data, raw=False)
    except Exception:
        return None
    found = message.get("id") if isinstance(message, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def reply(rid: int | None, result: Any) -> bytes:
    return encode({"type": "reply", "id": rid, "result": result})


def error(rid: int | None, text: str) -> bytes:
    return encode({"type": "error", "id": rid, "error": text})


def event(name: str, **fields: Any) -> bytes:
    return encode({"type": "event", "event": name, **fields})
