"""Server-sent events: lines split as SSE does, event data checked, the identity that
de-duplicates an event a reconnect replays, and the stream read within its deadline.
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
    Tuple,
)

from .bodies import _kind_of, _loads
from .config import _without_query
from .constants import ANSWER_CHUNK_BYTES, MAX_EVENT_BYTES
from .errors import APITimeoutError, MalformedResponseError
from .failures import _urllib3_error
from .netio import _socket_of


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


class _Streams:
    """Reading a long-lived answer: bytes as they come, and server-sent events from them."""

    def _iter_stream(
        self, method: str, url: str, response: Any, deadline: Optional[float]
    ) -> Iterator[bytes]:
        """The bytes of a long-lived answer as they arrive, whatever size each read is.

        Each read waits at most the read timeout, and never past `deadline`: a stream
        that trickles a byte now and then, or never ends a line, cannot hold a caller
        that checks its time per chunk. After the deadline, APITimeoutError.
        """
        read1 = getattr(response.raw, "read1", None)
        sock = _socket_of(response)
        if read1 is None or sock is None:  # an older urllib3: small reads, still bounded
            yield from self._iter_body(method, url, response, chunk_size=1)
            return
        errors = (self._requests.exceptions.RequestException, OSError, _urllib3_error())
        while True:
            wait = self.read_timeout
            if deadline is not None:
                wait = min(wait, deadline - self._clock())
                if wait <= 0:
                    raise APITimeoutError(
                        f"{method} {_without_query(url)}: the stream outlived its deadline"
                    )
            try:
                sock.settimeout(wait)
                chunk = read1(ANSWER_CHUNK_BYTES)
            except errors as error:
                raise self._connection_error(method, url, error) from None
            if not chunk:
                return
            yield chunk

    def _stream_sse(
        self, path: str, deadline: Optional[float] = None
    ) -> Iterator[Tuple[str, dict]]:
        """Yield ("open", {}) once connected, then (event name, data) per server-sent event,
        and ("tick", {}) per comment line, so a caller can keep time on a quiet stream."""
        url = self.base_url + path
        response, _ = self._send(
            "GET",
            url,
            headers={"Accept": "text/event-stream"},
            stream=True,
            deadline=deadline,
        )
        with response:
            self._raise_for_status("GET", url, response, "task")
            yield "open", {}
            event_name, data_lines, size = "message", [], 0
            for line in _sse_lines(self._iter_stream("GET", url, response, deadline)):
                if line is None or line.startswith(":"):
                    yield "tick", {}
                elif not line:
                    if data_lines:
                        yield event_name, _parse_event_data("\n".join(data_lines))
                    event_name, data_lines, size = "message", [], 0
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event_name = value
                    elif field == "data":
                        size += len(value) + 1
                        if size > MAX_EVENT_BYTES:
                            raise _event_too_large()
                        data_lines.append(value)
