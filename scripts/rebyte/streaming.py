"""Server-sent events: lines split as SSE does, event data checked, and the identity
that de-duplicates an event a reconnect replays.
"""

from __future__ import annotations

import hashlib
import json
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    Optional,
)

from .bodies import _kind_of, _loads
from .constants import MAX_EVENT_BYTES
from .errors import MalformedResponseError


def _sse_lines(chunks: Iterable[bytes]) -> Iterator[Optional[str]]:
    """Split a byte stream into lines as SSE does (LF or CRLF), yielding each as soon as it
    ends, and None after each chunk, so that the caller can keep time on a stream that
    never ends a line. Linear in the bytes; a line over MAX_EVENT_BYTES is malformed."""
    buffer = bytearray()
    for chunk in chunks:
        scanned = len(buffer)  # the bytes before are known to hold no newline
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", max(start, scanned))
            if end < 0:
                break
            line = bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
            yield line.decode("utf-8", errors="replace")
        del buffer[:start]
        if len(buffer) > MAX_EVENT_BYTES:
            raise _event_too_large()
        yield None
    if buffer:
        yield bytes(buffer).rstrip(b"\r").decode("utf-8", errors="replace")


def _event_too_large() -> MalformedResponseError:
    return MalformedResponseError(
        f"the event stream sent an event larger than {MAX_EVENT_BYTES / (1024 * 1024):g} MiB",
        status=None,
    )


def _event_identity(event: dict) -> Any:
    """What makes an event the same one when a reconnect replays it: its eventKey, else
    its prompt and seq, else (neither given) its whole content, so distinct ones stay."""
    if event.get("eventKey"):
        return event["eventKey"]
    if event.get("seq") is not None:
        return (event.get("promptId"), event["seq"])
    text = json.dumps(event, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", errors="replace")).digest()


_EVENT_FIELD_KINDS: Dict[str, Any] = {
    "seq": int,
    "lastSeq": int,
    "eventKey": str,
    "promptId": str,
    "eventType": str,
    "status": str,
}


def _parse_event_data(text: str) -> dict:
    try:
        data = _loads(text)
    except ValueError:
        return {"eventType": "unparsed", "payload": text}
    if not isinstance(data, dict):
        return {"eventType": "unparsed", "payload": data}
    for field, kinds in _EVENT_FIELD_KINDS.items():
        value = data.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise MalformedResponseError(
                f"the event stream sent an event whose {field} is {_kind_of(value)}", status=None
            )
    return data
