"""The events stream (GET /v1/tasks/{id}/events) as server-sent events: the route
(tasks.py) returns an _EventStream, and the HTTP handler (fakerebyte.http), of which
EventStreams is a mixin, sends it: replay, live events, keep-alives, done, drops.
"""

from __future__ import annotations

import json
import math
import secrets

from fakerebyte.base import _with_unknown_field
from fakerebyte.tasks import TERMINAL, _EventStream


class EventStreams:
    """Server-sent events of one prompt (a mixin of the HTTP handler)."""

    def _stream_events(self, entry: dict, stream: _EventStream) -> None:
        """Server-sent events of one prompt: replay, live events, then done; then close."""
        fake, prompt = self.fake, stream.prompt
        self._send_stream_head(entry)
        with fake._lock:
            early = (
                fake.events_early_done
                and stream.connection_index == 0
                and fake._now() < prompt.starts
            )
            drop_after = (
                fake.events_drop_after if stream.connection_index < fake.events_drops else None
            )
        if early:  # the prompt is still pending
            self._write_sse(
                "done", {"status": fake._done_word("pending"), "lastSeq": -1, "finalResult": None}
            )
            return
        sent, last_write = 0, fake._now()
        if drop_after is not None and drop_after <= 0:
            self._drop_stream()
            return
        while True:
            with fake._changed:
                generation = fake._generation
                now = fake._now()
                events = fake._events_json(prompt, now)
                status = prompt.status(now)
                final_result = fake._shown_answer(prompt, now)
                next_change = prompt.next_change(now)
            for event in events[sent:]:
                self._write_sse("event", event)
                sent, last_write = sent + 1, now
                if drop_after is not None and sent >= drop_after:
                    self._drop_stream()
                    return
            if status in TERMINAL:
                self._write_sse(
                    "done",
                    {
                        "status": fake._done_word(status),
                        "lastSeq": sent - 1,
                        "finalResult": final_result,
                    },
                )
                return
            keepalive = max(0.01, float(fake.keepalive_interval))
            wake = min(next_change if next_change is not None else math.inf, last_write + keepalive)
            with fake._changed:
                if fake._stopping.is_set():
                    return
                if fake._generation == generation:
                    fake._changed.wait(max(0.0, min(wake - fake._now(), keepalive)))
            if fake._now() - last_write >= keepalive - 0.001:
                self.wfile.write(b": keep-alive\n\n")
                last_write = fake._now()

    def _send_stream_head(self, entry: dict) -> None:
        request_id = "req_" + secrets.token_hex(12)
        entry["request_id"], entry["status"] = request_id, 200
        self.send_response(200)
        self.send_header("X-Request-Id", request_id)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

    def _write_sse(self, name: str, data: dict) -> None:
        if self.fake.unknown_field:
            data = _with_unknown_field(data)
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

    def _drop_stream(self) -> None:
        if self.fake.events_drop_mode == "reset":
            self._reset()
        self.close_connection = True
