"""A local Rebyte-compatible v1 API server for tests, demos and benchmarks.

What stripe-mock is to Stripe: the client is driven over real HTTP sockets against a
server that follows ../shared/api-contract.md and tests/server-shapes.md. Standard library
only, Python 3.9+, and no code shared with scripts/, so a mistake cannot hide on both sides.

Two listeners, both HTTP/1.1 with keep-alive:
  api     http://127.0.0.1:PORT/v1   the REST API; API_KEY (or api-key, x-api-key) checked
  upload  http://127.0.0.2:PORT2     the storage host: signed uploadUrls (files and artifacts)
                                     and signed artifact download URLs point here; it needs
                                     no key, and logs request headers like the API does

    with FakeRebyte("rbk_test_key", prompt_duration=0.3) as server:
        requests.get(server.base_url + "/tasks", headers={"API_KEY": "rbk_test_key"})

Command line: python3 tests/fake_rebyte.py --port 0 --key KEY [options; see --help]
prints the base URL (ending in /v1) as the first line on stdout, the upload base URL on
stderr, and serves until SIGINT or SIGTERM. `--plant-artifact WORKSPACE/NAME:SIZE` (repeatable)
plants a generated artifact first, as add_artifact(WORKSPACE, NAME, size=SIZE) does.

Shapes by default are exactly the documented ones (../shared/api-contract.md): the task
view is {id, url, status, title, executor, model, createdAt, completedAt, prompts: [{id,
status, submittedAt, completedAt}], finalResult} (no workspaceId, no visibility), a list row
is {id, url, title, executor, model, createdAt, completedAt} (no status, no workspaceId),
the create answer {id, workspaceId, url, status: "running", createdAt}, and `done` on the
events stream carries the PROMPT's status word (succeeded, failed, canceled), as the real
service sends. Anything more is behind a knob that is off by default (see Knobs).

Marker words in a prompt (case-sensitive, anywhere in the text):
  [fail]            the prompt fails; its result event carries {"isError": true, "error": ...}
  [ask]             an ask_user_question event ({"question": ...}) comes before the result
  [duration=SECS]   the prompt runs SECS seconds instead of prompt_duration
  [silent]          a prompt the service answers itself: it takes no time (unless a
                    [duration=] says otherwise) and has NO data events at all; every events
                    connection gets only {"status": "succeeded" (the prompt's word),
                    "lastSeq": -1, "finalResult": ""} once it has ended; the task's
                    finalResult is "", the /content response is null, and it leaves no
                    artifacts (the answer is available nowhere through the API)

Marker in an Agent Computer's name:
  [provision-error] the computer ends in `error` (not `ready`) with a provisionError text

A prompt of duration D is pending for the first 10% of D, running until D, then succeeded
(or failed). Its events (init, thinking, tool_use, tool_result, text, [ask_user_question])
are spread over the running part and the result event comes at D. Everything is computed
lazily from the clock: nothing runs in the background. The finalResult of a succeeded
prompt is final_result_for(prompt) = "Result for: " + its first 60 characters (markers
removed, whitespace collapsed). A follow-up runs on its own clock from when it is sent,
even if an earlier prompt is still running; cancel cancels every unfinished prompt.

Agent Computers are `provisioning` for computer_ready_delay seconds after their create,
then `ready` (sandboxId set) or `error`; also lazily, from the clock. A task created with a
computer's id as workspaceId skips provision_delay; a computer not ready is 400.
When a prompt succeeds its workspace gets report-<n>.md (text naming the prompt) and
output-<n>.bin (artifact_bytes deterministic bytes), n the prompt's 1-based number in its
task; they appear at the first artifact request after the prompt's end (a later prompt
with the same n in another task of the same computer replaces them).

Choices where the documents are silent:
  - an unknown workspaceId on POST /v1/tasks is 400 validation_error (naming the field);
  - a JSON body over 1 MiB is 413 payload_too_large; a body that is not sent as
    application/json is 400 validation_error;
  - the early, empty done (events_early_done) comes while the prompt is pending, so it
    says "pending" ("running" with done_status_words="task"), lastSeq -1, finalResult null;
  - with final_result_delay, the done message carries finalResult as it stands when done is
    sent (null within the delay); with empty_final_result it carries "";
  - unread request bodies up to 16 MiB are read and dropped before an error answer, larger
    ones are answered and the connection is closed (the client may see a reset);
  - seeded tasks do not count in tasks_created; a deleted task's workspace stays reusable;
  - cancel (POST /v1/tasks/:id/cancel, undocumented answer): 200 {"id", "status"}, the
    task's status after the cancel (knob cancel_answer for the other shapes);
  - executor and model are echoed as the create asked (knobs service_executor/model);
  - computers: DELETE answers 204; a deleted computer is 404 and its id no longer a
    workspace; updatedAt is the moment the status last changed;
  - artifact list: 200 {"data": [{"filename", "size", "contentType", "updatedAt"}]}, sorted
    by name (knobs change the wrapper and the name field); an unknown workspace is 404;
  - artifact download: 200 with the bytes (Content-Length, Content-Type), or 302 to a signed
    URL on the storage listener (GET /artifacts/<ws>/<name>?expires=&signature=); the name
    is ONE percent-encoded path segment (%2F for nested names);
  - artifact upload: multipart/form-data, parts named "file" (others ignored), filename from
    the part, at most 8 MiB per request (413 payload_too_large); 201 {"data": [entries]};
    an existing name is replaced. upload-url: {filename, contentType?} -> 201 {uploadUrl,
    filename, expiresAt}; a PUT to uploadUrl with Content-Length (and the signed
    Content-Type, if one was given) makes the artifact, streamed to a temporary folder;
  - webhooks: the same url again makes a second webhook (201, counted against the limit),
    as one of Rebyte's apps reports (knob webhook_dedupe: 200 with the existing one); a 4th
    is 400 limit_exceeded; events are checked against the five names;
    GET /v1/webhooks/public_key is {"publicKey": PEM of an Ed25519 key, "algorithm":
    "ed25519"} (nothing is delivered or signed: the server makes no outbound requests).

Knobs (constructor keywords, configure(**knobs) at run time, and command-line options of the
same name, e.g. --task-read-lag 2, --no-events-route, --cancel-answer 204):
  provision_delay      seconds POST /v1/tasks blocks (not when reusing a workspaceId)
  prompt_duration      seconds a prompt takes, unless its [duration=] marker says otherwise
  seed, fault_rate, fault_kinds, fault_routes, fault_after
                       random faults: a request whose (method, path) matches fault_routes
                       (None: all) gets, with probability fault_rate, a fault drawn from
                       fault_kinds by random.Random(seed): same seed and requests, same faults;
                       fault_after=True answers it after processing the request
  retry_after          Retry-After value sent with 429
  upload_url_ttl       seconds an uploadUrl stays valid (403 ExpiredToken after)
  seed_tasks           N completed tasks made at construction (for paging and benchmarks)
  events_early_done    the first events connection of a prompt, made before its first event,
                       gets an empty done {"status": "pending", "lastSeq": -1} (the race)
  events_drop_after, events_drops, events_drop_mode
                       the first events_drops connections of a prompt are cut after
                       events_drop_after data events, by a reset ("reset") or a plain close
                       without done ("eof")
  keepalive_interval   seconds between ": keep-alive" comments on a quiet events stream
  upload_dir           where uploaded bodies are written (as the returned filename); None:
                       counted and dropped. Bodies are streamed, never held in memory.
  computer_ready_delay seconds a new Agent Computer provisions (default 0.5)
  artifact_bytes       size of each output-<n>.bin (default 65536; kept as the attribute
                       artifact_bytes_knob, since artifact_bytes() is a test helper)
  artifacts_wrapper    "data" (default), "artifacts" or "bare" (a JSON list)
  artifact_name_field  "filename" (default) or "name"
  artifact_download    "direct" (default: 200 with the bytes) or "redirect" (302 to storage)
  webhooks_wrapper     "data" (default) or "webhooks"
 Extras beyond the documented shapes (all off by default):
  task_view_extras     False; True: the task view carries workspaceId and visibility, and
                       list rows workspaceId (the shapes before issue 18)
  list_status          False; True: list rows carry status too
  done_status_words    "prompt" (default: succeeded/failed/canceled, as the real service) or
                       "task" (completed/failed/canceled)
  unknown_field        False; True: every JSON object answered (nested ones, SSE data and
                       error bodies too) gains "x_unknown": 1, for clients to ignore
 Habits of the real service (each off by default unless noted):
  task_read_lag        0.0 seconds; > 0: after a prompt ends, GET /v1/tasks/:id, its list
                       row and /content show it running (completedAt and finalResult null,
                       response null) this long, while /events already sends done
  events_route         True; False: GET /v1/tasks/:id/events is 404 not_found for a task
                       GET /v1/tasks/:id still shows
  final_result_delay   0.0 seconds; > 0: a succeeded prompt's finalResult (task view, done)
                       and /content response stay null this long after its status is terminal
  empty_final_result   False; True: a succeeded prompt's finalResult is "" in the task view
                       and in done, while /content's response has the real answer
  content_prompt_ids   True; False: /content prompt entries carry no id (match by position)
  service_executor, service_model
                       None; a name: tasks created while set run with it (the task view, list
                       rows and init event show it) whatever the create asked
  submitted_equals_completed
                       False; True: prompt rows (task view, /content) carry completedAt equal
                       to submittedAt from the start, even while running
  webhook_dedupe       False (default: the same url again makes a second webhook, 201);
                       True: the same url again is 200 with the existing webhook
 Alternative shapes of answers the documents leave out (first value the default):
  cancel_answer        "status" ({id, status}), "empty" (200 {}), "ok" ({"ok": true}) or
                       "204" (no body)
  artifact_upload_wrapper
                       "data" ({"data": [entries]}), "artifacts" or "bare" (a JSON list)
  upload_url_field     "uploadUrl" or "url": the URL's key in the artifact upload-url answer
  public_key_field     "publicKey" or "key": the PEM's key in GET /v1/webhooks/public_key
  log_sink             called with each request-log entry once it is answered (for --log)
  key                  the API key; host, port, upload_host, upload_port only before start()

Faults (inject() scripts them; FAULT_KINDS lists them): "429" (with Retry-After), "500",
"502", "503" (JSON error bodies), "502-html", "503-html" (a proxy's HTML page), "reset"
(SO_LINGER 0: the client sees a connection reset), "stall" (read, never answered until
stop() or the client goes away), "empty-200", "html-200", "truncated-json" (2xx whose JSON
is cut), "short-body" (Content-Length promises more than is sent, then close),
"wrong-shape" (2xx with a JSON list), "204" (no body), "403-expired" (GCS-style XML).
On an artifact download (API or storage listener), "short-body" sends the headers of
the whole artifact and half its bytes, then closes: a download interrupted half-way.
The 2xx of "truncated-json", "wrong-shape" and "short-body" is the route's own (201 for
creates). Faults come before authentication, like a proxy's. On /events and artifact
downloads, after=True acts as after=False (a stream cannot be replaced once sent).

For tests: request_log (every request on both listeners, with "request_id" of the answer
besides the documented keys), requests(method, path_regex, listener), clear_log(),
tasks_created, prompts_created, file_info(file_id), held(), clear_faults(), final_result_for(),
add_artifact(workspace_id, name, data=None, size=None) (any name; size alone: generated
bytes), artifact_bytes(workspace_id, name), artifact_sha256(workspace_id, name) (constant
memory), artifact_names(workspace_id), webhook_secret(webhook_id), generated_chunks(seed,
size) (the generated bytes; an artifact's seed is "<workspace_id>/<name>").
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import hmac
import itertools
import json
import math
import mimetypes
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesHeaderParser, HeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

DEFAULT_KEY = "rbk_test_key"
EXECUTORS = ("opencode", "claude", "gemini", "codex")
DEFAULT_EXECUTOR = "claude"
DEFAULT_MODEL = "lite"
VISIBILITIES = ("private", "shared", "public")
MAX_PROMPT_CHARS = 100_000
MAX_FILENAME_CHARS = 255
MAX_JSON_BODY = 1024 * 1024
MAX_DRAIN = 16 * 1024 * 1024
MAX_ARTIFACT_FORM = 8 * 1024 * 1024
MAX_COMPUTER_NAME = 200
MAX_COMPUTER_ICON = 50
MAX_WEBHOOK_TEXT = 500
MAX_WEBHOOK_URL = 2048
MAX_WEBHOOKS = 3
WEBHOOK_EVENTS = ("task.created", "task.running", "task.completed", "task.failed", "task.canceled")
PROVISION_ERROR_MARKER = "[provision-error]"
DEFAULT_COMPUTER_NAME = "Agent Computer"
PATTERN_BYTES = 65521  # prime: generated bytes do not line up with chunk boundaries
CHUNK = 64 * 1024
PENDING_FRACTION = 0.1
API_KEY_HEADERS = ("API_KEY", "api-key", "x-api-key")
APP_URL = "https://app.rebyte.local"

FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "502-html",
    "503-html",
    "reset",
    "stall",
    "empty-200",
    "html-200",
    "truncated-json",
    "short-body",
    "wrong-shape",
    "204",
    "403-expired",
)
DEFAULT_RANDOM_FAULTS = ("429", "500", "502", "503", "reset")

TERMINAL = ("succeeded", "failed", "canceled")
TASK_STATUS_OF_PROMPT = {
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "canceled",
    "pending": "running",
    "running": "running",
}

_MARKER_RE = re.compile(r"\[(?:fail|ask|silent|duration=[^\]]*)\]")
_DURATION_RE = re.compile(r"\[duration=(\d+(?:\.\d*)?|\.\d+)\]")
_GITHUB_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
_UPLOAD_PATH_RE = re.compile(r"/upload/([0-9a-f-]{36})")
_ARTIFACT_UPLOAD_RE = re.compile(r"/artifact-upload/([0-9a-f-]{36})")
_ARTIFACT_DOWNLOAD_RE = re.compile(r"/artifacts/([^/]+)/([^/]+)")
_TASK = r"/v1/tasks/(?P<task_id>[^/]+)"
_COMPUTER = r"/v1/agent-computers/(?P<computer_id>[^/]+)"
_ARTIFACTS = r"/v1/workspaces/(?P<workspace_id>[^/]+)/artifacts"
_WEBHOOK = r"/v1/webhooks/(?P<webhook_id>[^/]+)"


def final_result_for(prompt: str) -> str:
    """The finalResult the server gives a prompt that succeeded (tests can predict it)."""
    return "Result for: " + _without_markers(prompt)[:60]


def _without_markers(text: str) -> str:
    return " ".join(_MARKER_RE.sub(" ", text).split())


def _title_for(prompt: str) -> str:
    words = _without_markers(prompt).split()
    return " ".join(words[:6])[:80] or "Untitled task"


# --------------------------------------------------------------------------------------------
# Answers


@dataclass
class Reply:
    """A complete HTTP answer, built before it is sent so that a fault can replace it."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict = field(default_factory=dict)
    close: bool = False

    @classmethod
    def json(cls, status: int, value, **kwargs) -> Reply:
        return cls(status, json.dumps(value).encode(), "application/json", **kwargs)


def _error(status: int, code: str, message: str, **kwargs) -> Reply:
    return Reply.json(status, {"error": {"code": code, "message": message}}, **kwargs)


def _xml_error(status: int, code: str, message: str, **kwargs) -> Reply:
    """An error as Google Cloud Storage words it (the documented uploadUrl is a GCS one)."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Reply(status, body.encode(), "application/xml; charset=UTF-8", **kwargs)


def _proxy_page(status: int) -> Reply:
    reason = {502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
    body = (
        f"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>"
        f"<body><h1>{status} {reason}</h1><p>The upstream server did not answer."
        "</p><hr><center>nginx</center></body></html>\n"
    )
    return Reply(status, body.encode(), "text/html; charset=utf-8")


def _success_status(method: str, path: str) -> int:
    creates = method == "POST" and (
        path in ("/v1/files", "/v1/tasks", "/v1/agent-computers", "/v1/webhooks")
        or any(
            re.fullmatch(pattern, path)
            for pattern in (_TASK + "/prompts", _ARTIFACTS, _ARTIFACTS + "/upload-url")
        )
    )
    return 201 if creates else 200


def _fault_success_status(real: Reply | None, method: str, path: str) -> int:
    """The 2xx a faulty success answer claims: the real one's, else the route's."""
    if real is not None and real.status in (200, 201):
        return real.status
    return _success_status(method, path)


def _fault_reply(fault: str, real: Reply | None, method: str, path: str, retry_after: str) -> Reply:
    """What a fault answers instead of `real` (None when the request was not processed)."""
    success = _fault_success_status(real, method, path)
    if fault == "429":
        return _error(
            429,
            "rate_limited",
            "Too many requests; slow down.",
            headers={"Retry-After": retry_after},
        )
    if fault in ("500", "502", "503"):
        return _error(int(fault), "internal_error", f"Injected {fault}.")
    if fault in ("502-html", "503-html"):
        return _proxy_page(int(fault[:3]))
    if fault == "empty-200":
        return Reply(200, b"", "application/json")
    if fault == "html-200":
        return Reply(
            200,
            b"<!DOCTYPE html><html><body>Sign in to continue</body></html>",
            "text/html; charset=utf-8",
        )
    if fault == "truncated-json":
        body = real.body if real is not None and real.body else b'{"id": "0123456789abcdef"}'
        return Reply(success, body[: max(1, len(body) // 2)], "application/json")
    if fault == "wrong-shape":
        return Reply.json(success, ["unexpected", "shape"])
    if fault == "204":
        return Reply(204)
    if fault == "403-expired":
        return _xml_error(403, "ExpiredToken", "The provided token has expired.")
    raise ValueError(f"fault {fault!r} has no canned answer")


class _HttpError(Exception):
    """Raised by the API code to answer with an error body."""

    def __init__(self, status: int, code: str, message: str, **kwargs):
        super().__init__(message)
        self.reply = _error(status, code, message, **kwargs)


def _invalid(message: str) -> _HttpError:
    return _HttpError(400, "validation_error", message)


class _Abort(Exception):
    """The server is stopping: close the connection without an answer."""


# --------------------------------------------------------------------------------------------
# State


@dataclass
class _Prompt:
    """One prompt; its status and events follow from the clock (monotonic seconds)."""

    id: str
    text: str
    skills: list
    filenames: list
    executor: str
    model: str
    submitted: float
    duration: float
    canceled_at: float | None = None
    stream_connections: int = 0
    artifacts_left: bool = False

    @property
    def fails(self) -> bool:
        return "[fail]" in self.text

    @property
    def asks(self) -> bool:
        return "[ask]" in self.text

    @property
    def silent(self) -> bool:
        """Answered by the service itself: no data events, an empty answer."""
        return "[silent]" in self.text

    @property
    def starts(self) -> float:
        return self.submitted + PENDING_FRACTION * self.duration

    @property
    def ends(self) -> float:
        return self.submitted + self.duration

    def status(self, now: float) -> str:
        if self.canceled_at is not None:
            return "canceled"
        if now < self.starts:
            return "pending"
        if now < self.ends:
            return "running"
        return "failed" if self.fails else "succeeded"

    def completed_at(self, now: float) -> float | None:
        if self.canceled_at is not None:
            return self.canceled_at
        return self.ends if now >= self.ends else None

    def final_result(self, now: float, delay: float = 0.0) -> str | None:
        """The answer once filled in: `delay` seconds after a success ("" when silent)."""
        if self.status(now) != "succeeded" or now < self.ends + delay:
            return None
        return "" if self.silent else final_result_for(self.text)

    def schedule(self) -> list:
        """(time, eventType, payload) of every event the prompt will emit if left alone."""
        if self.silent:
            return []
        listing = "\n".join(self.filenames)
        steps = [
            ("init", {"executor": self.executor, "model": self.model, "skills": self.skills}),
            ("thinking", {"text": "Reading the request: " + _without_markers(self.text)[:40]}),
            ("tool_use", {"tool": "bash", "input": {"command": "ls /code"}}),
            ("tool_result", {"tool": "bash", "output": listing, "isError": False}),
            ("text", {"text": "Working on it."}),
        ]
        if self.asks:
            steps.append(("ask_user_question", {"question": "Which format should the answer use?"}))
        running = self.ends - self.starts
        timed = [
            (self.starts + running * i / len(steps), kind, payload)
            for i, (kind, payload) in enumerate(steps)
        ]
        if self.fails:
            result = {"isError": True, "error": "The agent failed (the prompt asked: [fail])."}
        else:
            result = {"text": final_result_for(self.text)}
        return [*timed, (self.ends, "result", result)]

    def events(self, now: float) -> list:
        """The scheduled events that have happened by `now` (none after a cancel)."""
        return [
            event
            for event in self.schedule()
            if event[0] <= now and (self.canceled_at is None or event[0] < self.canceled_at)
        ]

    def next_change(self, now: float) -> float | None:
        """When the status or the event list next changes, if nothing else happens."""
        if self.canceled_at is not None:
            return None
        times = [t for t, _, _ in self.schedule() if t > now] + [self.starts, self.ends]
        upcoming = [t for t in times if t > now]
        return min(upcoming) if upcoming else None


@dataclass
class _Task:
    id: str
    workspace_id: str
    title: str
    executor: str
    model: str
    created: float
    prompts: list
    visibility: str = "shared"
    deleted: bool = False

    def status(self, now: float) -> str:
        statuses = [prompt.status(now) for prompt in self.prompts]
        if any(status not in TERMINAL for status in statuses):
            return "running"
        return TASK_STATUS_OF_PROMPT[statuses[-1]]

    def completed_at(self, now: float) -> float | None:
        if self.status(now) == "running":
            return None
        return max(prompt.completed_at(now) for prompt in self.prompts)


@dataclass
class _File:
    id: str
    filename: str
    content_type: str
    uploaded: bool = False
    size: int = 0


@functools.lru_cache(maxsize=32)
def _pattern(seed: str) -> bytes:
    """Three copies of PATTERN_BYTES random bytes from `seed` (slices never wrap twice)."""
    return random.Random(seed).randbytes(PATTERN_BYTES) * 3


def generated_chunks(seed: str, size: int, chunk: int = CHUNK):
    """The deterministic bytes of a generated artifact, `chunk` at a time (constant memory)."""
    pattern, sent = _pattern(seed), 0
    while sent < size:
        count = min(chunk, size - sent, 2 * PATTERN_BYTES)
        start = sent % PATTERN_BYTES
        yield pattern[start : start + count]
        sent += count


def _content_type_for(name: str) -> str:
    if name.endswith(".md"):
        return "text/markdown; charset=utf-8"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass
class _Artifact:
    """One file of a workspace: bytes in memory, a file on disk, or generated from a seed."""

    name: str
    size: int
    content_type: str
    updated: float  # monotonic
    data: bytes | None = None
    path: str | None = None
    seed: str | None = None

    def discard(self) -> None:
        """Remove an uploaded artifact's file (a download already open keeps reading it)."""
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def chunks(self):
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK):
                yield self.data[start : start + CHUNK]
        elif self.path is not None:
            with open(self.path, "rb") as handle:
                while True:
                    piece = handle.read(CHUNK)
                    if not piece:
                        return
                    yield piece
        else:
            yield from generated_chunks(self.seed or self.name, self.size)


@dataclass
class _Computer:
    """An Agent Computer: provisioning until ready_at, then ready (or error by its marker)."""

    id: str
    name: str
    icon: str | None
    created: float
    ready_at: float
    deleted: bool = False

    @property
    def fails(self) -> bool:
        return PROVISION_ERROR_MARKER in self.name

    def status(self, now: float) -> str:
        if now < self.ready_at:
            return "provisioning"
        return "error" if self.fails else "ready"


@dataclass
class _Webhook:
    id: str
    url: str
    events: list
    description: str | None
    secret: str | None
    created: float


@dataclass
class _ArtifactUpload:
    """A signed upload-url slot: the PUT of its bytes makes the artifact."""

    id: str
    workspace_id: str
    filename: str
    content_type: str | None


@dataclass
class _ByteStream:
    """Returned by the download routes: the handler streams it (it is not held whole)."""

    artifact: _Artifact


@dataclass
class _FaultRule:
    method: str
    path: re.Pattern
    fault: str
    remaining: int
    after: bool

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and bool(self.path.fullmatch(path))


@dataclass
class _EventStream:
    """Returned by the events route: the handler streams it (it cannot be a Reply)."""

    prompt: _Prompt
    connection_index: int


class _Request:
    """What the API routes need of a request."""

    def __init__(self, method: str, path: str, query: dict, headers, raw: bytes | None):
        self.method, self.path, self.query, self.headers, self.raw = (
            method,
            path,
            query,
            headers,
            raw,
        )

    def json_object(self) -> dict:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if self.raw and content_type != "application/json":
            raise _invalid(f"body must be sent as application/json, not {content_type!r}")
        try:
            value = json.loads(self.raw or b"")
        except ValueError:
            raise _invalid("body is not valid JSON") from None
        if not isinstance(value, dict):
            raise _invalid("body must be a JSON object")
        return value


_KNOBS = frozenset(
    {
        "key",
        "host",
        "port",
        "upload_host",
        "upload_port",
        "provision_delay",
        "prompt_duration",
        "seed",
        "fault_rate",
        "fault_kinds",
        "fault_routes",
        "fault_after",
        "retry_after",
        "upload_url_ttl",
        "seed_tasks",
        "events_early_done",
        "events_drop_after",
        "events_drops",
        "events_drop_mode",
        "keepalive_interval",
        "upload_dir",
        "log_sink",
        "computer_ready_delay",
        "artifact_bytes",
        "artifacts_wrapper",
        "artifact_name_field",
        "artifact_download",
        "webhooks_wrapper",
        "task_view_extras",
        "list_status",
        "done_status_words",
        "task_read_lag",
        "events_route",
        "final_result_delay",
        "empty_final_result",
        "content_prompt_ids",
        "service_executor",
        "service_model",
        "submitted_equals_completed",
        "webhook_dedupe",
        "cancel_answer",
        "artifact_upload_wrapper",
        "upload_url_field",
        "public_key_field",
        "unknown_field",
    }
)
_CHOICES = {
    "events_drop_mode": ("reset", "eof"),
    "artifacts_wrapper": ("data", "artifacts", "bare"),
    "artifact_name_field": ("filename", "name"),
    "artifact_download": ("direct", "redirect"),
    "webhooks_wrapper": ("data", "webhooks"),
    "done_status_words": ("prompt", "task"),
    "cancel_answer": ("status", "empty", "ok", "204"),
    "artifact_upload_wrapper": ("data", "artifacts", "bare"),
    "upload_url_field": ("uploadUrl", "url"),
    "public_key_field": ("publicKey", "key"),
}
_BOOL_KNOBS = frozenset(
    {
        "fault_after",
        "events_early_done",
        "task_view_extras",
        "list_status",
        "events_route",
        "empty_final_result",
        "content_prompt_ids",
        "submitted_equals_completed",
        "webhook_dedupe",
        "unknown_field",
    }
)
_SECONDS_KNOBS = frozenset(
    {"computer_ready_delay", "artifact_bytes", "task_read_lag", "final_result_delay"}
)
_NAME_KNOBS = frozenset({"service_executor", "service_model"})
UNKNOWN_FIELD = ("x_unknown", 1)  # what unknown_field=True adds to every JSON object
_ADDRESS_KNOBS = frozenset({"host", "port", "upload_host", "upload_port"})


class FakeRebyte:
    """The server: state in memory, two listeners, a request log and fault injection."""

    def __init__(
        self,
        key: str = DEFAULT_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upload_host: str = "127.0.0.2",
        upload_port: int = 0,
        provision_delay: float = 0.0,
        prompt_duration: float = 0.5,
        seed: int = 0,
        fault_rate: float = 0.0,
        fault_kinds=DEFAULT_RANDOM_FAULTS,
        fault_routes=None,
        fault_after: bool = False,
        retry_after: str = "1",
        upload_url_ttl: float = 3600.0,
        seed_tasks: int = 0,
        events_early_done: bool = False,
        events_drop_after: int | None = None,
        events_drops: int = 1,
        events_drop_mode: str = "reset",
        keepalive_interval: float = 2.0,
        upload_dir: str | None = None,
        log_sink=None,
        computer_ready_delay: float = 0.5,
        artifact_bytes: int = 65536,
        artifacts_wrapper: str = "data",
        artifact_name_field: str = "filename",
        artifact_download: str = "direct",
        webhooks_wrapper: str = "data",
        task_view_extras: bool = False,
        list_status: bool = False,
        done_status_words: str = "prompt",
        task_read_lag: float = 0.0,
        events_route: bool = True,
        final_result_delay: float = 0.0,
        empty_final_result: bool = False,
        content_prompt_ids: bool = True,
        service_executor: str | None = None,
        service_model: str | None = None,
        submitted_equals_completed: bool = False,
        webhook_dedupe: bool = False,
        cancel_answer: str = "status",
        artifact_upload_wrapper: str = "data",
        upload_url_field: str = "uploadUrl",
        public_key_field: str = "publicKey",
        unknown_field: bool = False,
    ):
        knobs = {name: value for name, value in locals().items() if name in _KNOBS}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # wakes event streams
        self._generation = 0
        self._stopping = threading.Event()
        self._mono0, self._wall0 = time.monotonic(), time.time()
        self._tasks: dict = {}  # id -> _Task, in creation order
        self._workspaces: set = set()
        self._files: dict = {}  # id -> _File
        self._computers: dict = {}  # id -> _Computer, in creation order
        self._artifacts: dict = {}  # workspace id -> {name: _Artifact}
        self._artifact_uploads: dict = {}  # id -> _ArtifactUpload
        self._webhooks: dict = {}  # id -> _Webhook, in creation order
        self._artifact_dir = tempfile.TemporaryDirectory(prefix="fake-rebyte-artifacts-")
        self._public_key = self._make_public_key(seed)
        self._scripted: list = []
        self._signing_key = secrets.token_bytes(32)
        self._connection_ids = itertools.count(1)
        self._open_connections: set = set()
        self._handler_threads: set = set()
        self._servers: list = []
        self._threads: list = []
        self.request_log: list = []
        self.tasks_created = 0
        self.prompts_created = 0
        assert set(knobs) == _KNOBS, "every knob is a constructor keyword"
        self.configure(**knobs)
        self._seed_tasks(seed_tasks)
        self._routes = [
            (re.compile(r"/v1/files"), {"POST": self._create_file}),
            (re.compile(r"/v1/tasks"), {"GET": self._list_tasks, "POST": self._create_task}),
            (re.compile(_TASK), {"GET": self._get_task, "DELETE": self._delete_task}),
            (re.compile(_TASK + "/prompts"), {"POST": self._add_prompt}),
            (re.compile(_TASK + "/visibility"), {"PATCH": self._set_visibility}),
            (re.compile(_TASK + "/cancel"), {"POST": self._cancel}),
            (re.compile(_TASK + "/content"), {"GET": self._content}),
            (re.compile(_TASK + "/events"), {"GET": self._events}),
            (
                re.compile(r"/v1/agent-computers"),
                {"GET": self._list_computers, "POST": self._create_computer},
            ),
            (re.compile(_COMPUTER), {"GET": self._get_computer, "DELETE": self._delete_computer}),
            (
                re.compile(_ARTIFACTS),
                {
                    "GET": self._list_artifacts,
                    "POST": self._post_artifacts,
                    "DELETE": self._delete_all_artifacts,
                },
            ),
            (re.compile(_ARTIFACTS + "/upload-url"), {"POST": self._artifact_upload_url}),
            (
                re.compile(_ARTIFACTS + "/(?P<name>[^/]+)"),
                {
                    "GET": self._get_artifact,
                    "HEAD": self._get_artifact,
                    "DELETE": self._delete_artifact,
                },
            ),
            (re.compile(r"/v1/webhooks"), {"GET": self._list_webhooks, "POST": self._add_webhook}),
            (re.compile(r"/v1/webhooks/public_key"), {"GET": self._webhook_public_key}),
            (re.compile(_WEBHOOK), {"GET": self._get_webhook, "DELETE": self._delete_webhook}),
        ]

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> FakeRebyte:
        if self._servers:
            return self
        self._stopping.clear()
        api = _Server((self.host, self.port), self, "api")
        try:
            upload = _Server((self.upload_host, self.upload_port), self, "upload")
        except OSError:
            api.server_close()
            raise
        self._servers = [api, upload]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"fake-rebyte-{server.listener}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop fast: wake stalls, streams and provisioning waits, then cut open sockets."""
        if not self._servers:
            return
        self._stopping.set()
        self._notify()
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for stopper in stoppers:  # together: each waits up to a poll interval
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.server_close()
        with self._lock:
            connections = list(self._open_connections)
            handlers = list(self._handler_threads)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for thread in [*self._threads, *handlers]:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._servers, self._threads = [], []

    def __enter__(self) -> FakeRebyte:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._address("api")
        return f"http://{host}:{port}/v1"

    @property
    def upload_base_url(self) -> str:
        host, port = self._address("upload")
        return f"http://{host}:{port}"

    def _address(self, listener: str) -> tuple:
        for server in self._servers:
            if server.listener == listener:
                return server.server_address[:2]
        raise RuntimeError("the server is not started")

    # ---- knobs and faults ------------------------------------------------------------------

    def configure(self, **knobs) -> None:
        """Change knobs (see the module docstring); safe while requests are served."""
        unknown = set(knobs) - _KNOBS
        if unknown:
            raise TypeError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        with self._lock:
            if self._servers and _ADDRESS_KNOBS & set(knobs):
                raise ValueError("host and port knobs cannot change while the server runs")
            for name, value in knobs.items():
                if name == "seed":
                    self._rng = random.Random(value)
                elif name == "fault_kinds":
                    value = tuple(value)
                    bad = [kind for kind in value if kind not in FAULT_KINDS]
                    if bad or not value:
                        raise ValueError(f"unknown fault kind(s) {bad}; known: {FAULT_KINDS}")
                elif name == "fault_routes" and value is not None:
                    value = [(method.upper(), re.compile(pattern)) for method, pattern in value]
                elif name in _CHOICES and value not in _CHOICES[name]:
                    raise ValueError(f"{name} is one of {', '.join(_CHOICES[name])}")
                elif name in _SECONDS_KNOBS and not (
                    isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and 0 <= value < math.inf
                ):
                    raise ValueError(f"{name} must be a finite number >= 0")
                elif name in _BOOL_KNOBS and not isinstance(value, bool):
                    raise ValueError(f"{name} must be True or False")
                elif (
                    name in _NAME_KNOBS
                    and value is not None
                    and not (isinstance(value, str) and value.strip())
                ):
                    raise ValueError(f"{name} must be None or a non-empty string")
                elif name == "retry_after":
                    value = str(value)
                if name == "artifact_bytes":  # the name of a test helper method too
                    name = "artifact_bytes_knob"
                setattr(self, name, value)
        self._notify()

    def inject(
        self, method: str, path_regex: str, fault: str, *, count: int = 1, after: bool = False
    ) -> None:
        """Answer the next `count` requests matching method (or "*") and path with `fault`.

        after=False: the fault replaces the processing (nothing happens on the server);
        after=True: the request is processed (a task IS created), then the fault answers.
        """
        if fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault!r}; known: {FAULT_KINDS}")
        rule = _FaultRule(method.upper(), re.compile(path_regex), fault, count, after)
        with self._lock:
            self._scripted.append(rule)

    def clear_faults(self) -> None:
        """Forget the scripted faults not used yet."""
        with self._lock:
            self._scripted.clear()

    def _choose_fault(self, method: str, path: str) -> tuple:
        """(fault or None, after) for this request: scripted ones first, then random ones."""
        with self._lock:
            for rule in self._scripted:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._scripted.remove(rule)
                    return rule.fault, rule.after
            if self.fault_rate > 0 and self._random_faults_apply(method, path):
                if self._rng.random() < self.fault_rate:
                    return self._rng.choice(self.fault_kinds), self.fault_after
        return None, False

    def _random_faults_apply(self, method: str, path: str) -> bool:
        if self.fault_routes is None:
            return True
        return any(
            route_method in ("*", method) and pattern.fullmatch(path)
            for route_method, pattern in self.fault_routes
        )

    # ---- request log -----------------------------------------------------------------------

    def requests(
        self, method: str | None = None, path_regex: str | None = None, listener: str | None = "api"
    ) -> list:
        """Logged requests, filtered (path_regex must match the whole path; listener None: both)."""
        with self._lock:
            entries = list(self.request_log)
        return [
            entry
            for entry in entries
            if (listener is None or entry["listener"] == listener)
            and (method is None or entry["method"] == method.upper())
            and (path_regex is None or re.fullmatch(path_regex, entry["path"]))
        ]

    def clear_log(self) -> None:
        with self._lock:
            self.request_log.clear()

    def file_info(self, file_id: str) -> dict | None:
        """What the server knows of a file slot: filename, contentType, uploaded, size."""
        with self._lock:
            record = self._files.get(file_id)
            if record is None:
                return None
            return {
                "id": record.id,
                "filename": record.filename,
                "contentType": record.content_type,
                "uploaded": record.uploaded,
                "size": record.size,
            }

    def add_artifact(
        self,
        workspace_id: str,
        name: str,
        data: bytes | None = None,
        size: int | None = None,
        content_type: str | None = None,
    ) -> None:
        """Plant an artifact under any name (hostile ones too); the workspace need not exist.

        `data`: these bytes; `size` alone: that many deterministic generated bytes, made
        while they are sent, never held whole (1 GiB is fine).
        """
        if (data is None) == (size is None):
            raise ValueError("give data or size, not both")
        content_type = content_type or _content_type_for(name)
        with self._lock:
            files = self._artifacts.setdefault(workspace_id, {})
            if data is not None:
                files[name] = _Artifact(
                    name, len(data), content_type, self._now(), data=bytes(data)
                )
            else:
                files[name] = _Artifact(
                    name, int(size), content_type, self._now(), seed=f"{workspace_id}/{name}"
                )

    def _artifact_for_test(self, workspace_id: str, name: str) -> _Artifact:
        with self._lock:
            if self._workspace_known(workspace_id):
                self._workspace_artifacts(workspace_id, self._now())
            artifact = self._artifacts.get(workspace_id, {}).get(name)
        if artifact is None:
            raise KeyError(f"no artifact {name!r} in workspace {workspace_id}")
        return artifact

    def artifact_bytes(self, workspace_id: str, name: str) -> bytes:
        """The bytes of an artifact, whole (for small ones; see artifact_sha256)."""
        return b"".join(self._artifact_for_test(workspace_id, name).chunks())

    def artifact_sha256(self, workspace_id: str, name: str) -> str:
        """The hex SHA-256 of an artifact, computed in constant memory (for large ones)."""
        digest = hashlib.sha256()
        for piece in self._artifact_for_test(workspace_id, name).chunks():
            digest.update(piece)
        return digest.hexdigest()

    def artifact_names(self, workspace_id: str) -> list:
        """The names of a workspace's artifacts, sorted (what the list route would show)."""
        with self._lock:
            if self._workspace_known(workspace_id):
                self._workspace_artifacts(workspace_id, self._now())
            return sorted(self._artifacts.get(workspace_id, {}))

    def webhook_secret(self, webhook_id: str) -> str | None:
        """The secret a webhook was registered with (the API never returns it)."""
        with self._lock:
            hook = self._webhooks.get(webhook_id)
            if hook is None:
                raise KeyError(f"no webhook {webhook_id}")
            return hook.secret

    def held(self) -> dict:
        """Ids of the live tasks (with their workspace and prompt ids), of the file slots,
        computers and webhooks, oldest first, read in-process: for a test that hands ids to
        a shell or an interpreter, which must not take them from an HTTP answer."""
        with self._lock:
            tasks = [
                {
                    "id": task.id,
                    "workspaceId": task.workspace_id,
                    "promptIds": [prompt.id for prompt in task.prompts],
                }
                for task in self._tasks.values()
                if not task.deleted
            ]
            files = [
                {"id": record.id, "filename": record.filename} for record in self._files.values()
            ]
            computers = [c.id for c in self._computers.values() if not c.deleted]
            webhooks = list(self._webhooks)
        return {"tasks": tasks, "files": files, "computers": computers, "webhooks": webhooks}

    def _record(
        self, listener: str, method: str, path: str, query: dict, headers: dict, connection: int
    ) -> dict:
        entry = {
            "listener": listener,
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "json": None,
            "body_bytes": 0,
            "status": None,
            "fault": None,
            "connection": connection,
            "time": time.time(),
            "request_id": None,
        }
        with self._lock:
            self.request_log.append(entry)
        return entry

    def _finish(self, entry: dict) -> None:
        sink = self.log_sink
        if sink is not None:
            sink(entry)

    # ---- connections -----------------------------------------------------------------------

    def _register_connection(self, connection: socket.socket) -> int:
        with self._lock:
            self._open_connections.add(connection)
            self._handler_threads.add(threading.current_thread())
            return next(self._connection_ids)

    def _unregister_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._open_connections.discard(connection)
            self._handler_threads.discard(threading.current_thread())

    # ---- clock -----------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic()

    def _iso(self, moment: float | None) -> str | None:
        if moment is None:
            return None
        wall = datetime.fromtimestamp(self._wall0 + (moment - self._mono0), timezone.utc)
        return wall.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    # ---- API -------------------------------------------------------------------------------

    def _api(self, request: _Request, too_large: bool):
        """Route one API request: a Reply, or an _EventStream for the handler to stream."""
        try:
            if request.path != "/v1" and not request.path.startswith("/v1/"):
                raise _HttpError(404, "not_found", f"No route for {request.path}.")
            if too_large:
                limit = MAX_ARTIFACT_FORM if _is_multipart(request.headers) else MAX_JSON_BODY
                raise _HttpError(
                    413, "payload_too_large", f"The body is larger than {limit} bytes."
                )
            self._authenticate(request.headers)
            allowed = []
            for pattern, handlers in self._routes:
                match = pattern.fullmatch(request.path)
                if match is None:
                    continue
                handler = handlers.get(request.method)
                if handler is None:
                    allowed += [method for method in handlers if method not in allowed]
                    continue
                params = {name: unquote(value) for name, value in match.groupdict().items()}
                return self._marked(handler(request, **params))
            if allowed:
                raise _HttpError(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed on {request.path}.",
                    headers={"Allow": ", ".join(allowed)},
                )
            raise _HttpError(404, "not_found", f"No route for {request.path}.")
        except _HttpError as error:
            return self._marked(error.reply)

    def _marked(self, reply):
        """With unknown_field on, every JSON object of the answer gains UNKNOWN_FIELD."""
        if (
            not self.unknown_field
            or not isinstance(reply, Reply)
            or reply.content_type != "application/json"
            or not reply.body
        ):
            return reply
        reply.body = json.dumps(_with_unknown_field(json.loads(reply.body))).encode()
        return reply

    def _authenticate(self, headers) -> None:
        supplied = [headers.get(name) for name in API_KEY_HEADERS if headers.get(name) is not None]
        if not supplied:
            raise _HttpError(401, "unauthorized", "Missing API key: send the API_KEY header.")
        expected = self.key.encode()
        if not any(hmac.compare_digest(value.encode(), expected) for value in supplied):
            raise _HttpError(401, "unauthorized", "Invalid API key.")

    def _live_task(self, task_id: str) -> _Task:
        task = self._tasks.get(task_id)
        if task is None or task.deleted:
            raise _HttpError(404, "not_found", f"Task {task_id} not found.")
        return task

    # -- files

    def _create_file(self, request: _Request) -> Reply:
        body = request.json_object()
        filename = body.get("filename")
        if filename is None:
            raise _invalid("filename is required")
        if not isinstance(filename, str) or not filename.strip():
            raise _invalid("filename must be a non-empty string")
        if len(filename) > MAX_FILENAME_CHARS:
            raise _invalid(f"filename is longer than {MAX_FILENAME_CHARS} characters")
        if "/" in filename or "\0" in filename:
            raise _invalid("filename must not contain '/' (a name, not a path)")
        content_type = body.get("contentType", "application/octet-stream")
        if not isinstance(content_type, str) or not content_type.strip():
            raise _invalid("contentType must be a non-empty string")
        stem, extension = os.path.splitext(filename)
        with self._lock:
            taken = {record.filename for record in self._files.values()}
            while True:
                file_id = str(uuid.uuid4())
                unique = f"{stem}-{file_id[:4]}{extension}"
                if unique not in taken:
                    break
            self._files[file_id] = _File(file_id, unique, content_type)
        expires = int(time.time() + self.upload_url_ttl)
        upload_url = (
            f"{self.upload_base_url}/upload/{file_id}?expires={expires}"
            f"&signature={self._sign(file_id, expires)}"
        )
        return Reply.json(201, {"id": file_id, "filename": unique, "uploadUrl": upload_url})

    def _sign(self, file_id: str, expires) -> str:
        message = f"PUT\n{file_id}\n{expires}".encode()
        return hmac.new(self._signing_key, message, "sha256").hexdigest()

    def _upload_target(self, path: str, query: dict):
        """The _File a signed upload URL names, or the XML error a storage host would give."""
        match = _UPLOAD_PATH_RE.fullmatch(path)
        expires, signature = query.get("expires", ""), query.get("signature", "")
        if (
            match is None
            or not expires.isdigit()
            or not hmac.compare_digest(signature, self._sign(match.group(1), expires))
        ):
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if time.time() >= int(expires):
            return _xml_error(
                403,
                "ExpiredToken",
                f"The provided token has expired. Request signature expired at: {expires}",
            )
        with self._lock:
            record = self._files.get(match.group(1))
        if record is None:
            return _xml_error(404, "NoSuchUpload", "The requested upload was not found.")
        return record

    def _upload_finished(self, record: _File, size: int) -> None:
        with self._lock:
            record.uploaded, record.size = True, size

    # -- tasks

    def _validated_prompt(self, body: dict) -> tuple:
        """(prompt, skills, filenames) of a create or follow-up body; 400 when wrong."""
        prompt = body.get("prompt")
        if prompt is None:
            raise _invalid("prompt is required")
        if not isinstance(prompt, str):
            raise _invalid("prompt must be a string")
        if not prompt.strip():
            raise _invalid("prompt must not be empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise _invalid(f"prompt is longer than {MAX_PROMPT_CHARS} characters ({len(prompt)})")
        skills = body.get("skills", [])
        if not isinstance(skills, list) or not all(
            isinstance(skill, str) and skill.strip() for skill in skills
        ):
            raise _invalid("skills must be a list of non-empty strings")
        files = body.get("files", [])
        if not isinstance(files, list):
            raise _invalid("files must be a list of {id, filename} objects")
        filenames = []
        with self._lock:
            for index, item in enumerate(files):
                if not (
                    isinstance(item, dict)
                    and isinstance(item.get("id"), str)
                    and isinstance(item.get("filename"), str)
                ):
                    raise _invalid(f"files[{index}] must be an object with string id and filename")
                record = self._files.get(item["id"])
                if record is None:
                    raise _invalid(f"files[{index}]: no file with id {item['id']}")
                if not record.uploaded:
                    raise _invalid(
                        f"files[{index}]: file {item['id']} was never uploaded "
                        "(PUT its uploadUrl first)"
                    )
                if item["filename"] != record.filename:
                    raise _invalid(
                        f"files[{index}].filename must be {record.filename!r}, "
                        "the name POST /v1/files returned"
                    )
                filenames.append(record.filename)
        return prompt, list(skills), filenames

    def _validated_task_options(self, body: dict) -> tuple:
        """(executor, model, workspace_id) of a create body; 400 when wrong."""
        executor = body.get("executor", DEFAULT_EXECUTOR)
        if executor not in EXECUTORS:
            raise _invalid(f"executor must be one of {', '.join(EXECUTORS)}")
        model = body.get("model", DEFAULT_MODEL)
        if not isinstance(model, str) or not model.strip():
            raise _invalid("model must be a non-empty string")
        github_url = body.get("githubUrl")
        if github_url is not None and not (
            isinstance(github_url, str)
            and _GITHUB_REPO_RE.fullmatch(github_url)
            and github_url.split("/")[1] not in (".", "..")
        ):
            raise _invalid("githubUrl must be 'owner/repo'")
        if "branchName" in body and not isinstance(body["branchName"], str):
            raise _invalid("branchName must be a string")
        workspace_id = body.get("workspaceId")
        if "workspaceId" in body:
            if not isinstance(workspace_id, str):
                raise _invalid("workspaceId must be a string")
            with self._lock:
                computer = self._computers.get(workspace_id)
                if computer is not None and not computer.deleted:
                    status = computer.status(self._now())
                    if status != "ready":
                        raise _invalid(
                            f"workspaceId {workspace_id} is an Agent Computer that "
                            f"is {status}, not ready"
                        )
                elif workspace_id not in self._workspaces or computer is not None:
                    raise _invalid(f"workspaceId {workspace_id} is not a known workspace")
        return executor, model, workspace_id

    def _new_prompt(
        self, task: _Task, text: str, skills: list, filenames: list, now: float
    ) -> _Prompt:
        marker = _DURATION_RE.search(text)
        if marker:
            duration = float(marker.group(1))
        else:  # a prompt the service answers itself is done at once
            duration = 0.0 if "[silent]" in text else float(self.prompt_duration)
        prompt = _Prompt(
            str(uuid.uuid4()),
            text,
            skills,
            filenames,
            task.executor,
            task.model,
            submitted=now,
            duration=duration,
        )
        task.prompts.append(prompt)
        return prompt

    def _create_task(self, request: _Request) -> Reply:
        body = request.json_object()
        text, skills, filenames = self._validated_prompt(body)
        executor, model, workspace_id = self._validated_task_options(body)
        if workspace_id is None:
            self._stopping.wait(float(self.provision_delay))
        if self._stopping.is_set():
            raise _Abort()
        with self._lock:
            now = self._now()
            workspace_id = workspace_id or str(uuid.uuid4())
            executor = self.service_executor or executor  # what actually runs
            model = self.service_model or model
            task = _Task(
                str(uuid.uuid4()),
                workspace_id,
                _title_for(text),
                executor,
                model,
                created=now,
                prompts=[],
            )
            self._new_prompt(task, text, skills, filenames, now)
            self._tasks[task.id] = task
            self._workspaces.add(workspace_id)
            self.tasks_created += 1
        self._notify()
        return Reply.json(
            201,
            {
                "id": task.id,
                "workspaceId": task.workspace_id,
                "url": f"{APP_URL}/run/{task.id}",
                "status": "running",
                "createdAt": self._iso(task.created),
            },
        )

    def _seed_tasks(self, count: int) -> None:
        """Completed tasks, one second apart, all older than anything created later."""
        now = self._now()
        with self._lock:
            for number in range(1, count + 1):
                created = now - (count - number + 1)
                task = _Task(
                    str(uuid.uuid4()),
                    str(uuid.uuid4()),
                    f"Seeded task {number}",
                    DEFAULT_EXECUTOR,
                    DEFAULT_MODEL,
                    created=created,
                    prompts=[],
                )
                prompt = self._new_prompt(task, f"Seeded task {number}", [], [], created)
                prompt.duration = min(prompt.duration, 0.5)
                self._tasks[task.id] = task
                self._workspaces.add(task.workspace_id)

    def _list_tasks(self, request: _Request) -> Reply:
        return self._list_page(request, self._tasks, self._summary_json)

    def _list_page(self, request: _Request, items: dict, to_json) -> Reply:
        """One page of the live items, newest first: {data, total, limit, offset}."""
        limit = _int_param(request.query, "limit", 50, 1, 100)
        offset = _int_param(request.query, "offset", 0, 0, None)
        with self._lock:
            now = self._now()
            live = [item for item in reversed(items.values()) if not item.deleted]
            page = [to_json(item, now) for item in live[offset : offset + limit]]
        return Reply.json(200, {"data": page, "total": len(live), "limit": limit, "offset": offset})

    def _get_task(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            return Reply.json(200, self._task_json(self._live_task(task_id), self._now()))

    def _delete_task(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            self._live_task(task_id).deleted = True
        return Reply(204)

    def _add_prompt(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            self._live_task(task_id)
        text, skills, filenames = self._validated_prompt(request.json_object())
        with self._lock:
            task = self._live_task(task_id)
            prompt = self._new_prompt(task, text, skills, filenames, self._now())
            self.prompts_created += 1
        self._notify()
        return Reply.json(201, {"promptId": prompt.id})

    def _set_visibility(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            self._live_task(task_id)
        visibility = request.json_object().get("visibility")
        if visibility not in VISIBILITIES:
            raise _invalid(f"visibility must be one of {', '.join(VISIBILITIES)}")
        with self._lock:
            self._live_task(task_id).visibility = visibility
        answer = {"visibility": visibility}
        if visibility == "public":
            answer["shareUrl"] = f"{APP_URL}/share/{task_id}"
        return Reply.json(200, answer)

    def _cancel(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            task = self._live_task(task_id)
            now = self._now()
            for prompt in task.prompts:
                if prompt.status(now) not in TERMINAL:
                    prompt.canceled_at = now
            status = task.status(now)
        self._notify()
        if self.cancel_answer == "204":
            return Reply(204)
        return Reply.json(
            200,
            {"status": {"id": task_id, "status": status}, "empty": {}, "ok": {"ok": True}}[
                self.cancel_answer
            ],
        )

    def _content(self, request: _Request, task_id: str) -> Reply:
        with_events = "events" in request.query.get("include", "").split(",")
        with self._lock:
            task = self._live_task(task_id)
            now = self._now()
            prompts = []
            for prompt in task.prompts:
                status, _ = self._seen(prompt, now)
                response = None
                if status == "succeeded" and not prompt.silent:
                    response = prompt.final_result(now, float(self.final_result_delay))
                item = {
                    "id": prompt.id,
                    "status": status,
                    "userPrompt": prompt.text,
                    "response": response,
                    **self._prompt_times(prompt, now),
                }
                if not self.content_prompt_ids:
                    del item["id"]
                if with_events:
                    item["events"] = self._events_json(prompt, now)
                prompts.append(item)
        return Reply.json(200, {"id": task.id, "prompts": prompts})

    def _events(self, request: _Request, task_id: str) -> _EventStream:
        with self._lock:
            task = self._live_task(task_id)
            if not self.events_route:
                raise _HttpError(404, "not_found", f"No route for {request.path}.")
            prompt = task.prompts[-1]
            index = prompt.stream_connections
            prompt.stream_connections += 1
        return _EventStream(prompt, index)

    # -- Agent Computers

    def _computer_json(self, computer: _Computer, now: float) -> dict:
        status = computer.status(now)
        return {
            "id": computer.id,
            "name": computer.name,
            "status": status,
            "sandboxId": f"sbx_{computer.id[:8]}" if status == "ready" else None,
            "icon": computer.icon,
            "url": f"{APP_URL}/computers/{computer.id}",
            "provisionError": (
                f"The VM could not be provisioned (the name asked: {PROVISION_ERROR_MARKER})."
                if status == "error"
                else None
            ),
            "createdAt": self._iso(computer.created),
            "updatedAt": self._iso(
                computer.created if status == "provisioning" else computer.ready_at
            ),
        }

    def _live_computer(self, computer_id: str) -> _Computer:
        computer = self._computers.get(computer_id)
        if computer is None or computer.deleted:
            raise _HttpError(404, "not_found", f"Agent Computer {computer_id} not found.")
        return computer

    def _create_computer(self, request: _Request) -> Reply:
        body = request.json_object() if request.raw else {}
        name = body.get("name", DEFAULT_COMPUTER_NAME)
        if not isinstance(name, str) or not name.strip():
            raise _invalid("name must be a non-empty string")
        if len(name) > MAX_COMPUTER_NAME:
            raise _invalid(f"name is longer than {MAX_COMPUTER_NAME} characters")
        icon = body.get("icon")
        if icon is not None and not isinstance(icon, str):
            raise _invalid("icon must be a string")
        if icon is not None and len(icon) > MAX_COMPUTER_ICON:
            raise _invalid(f"icon is longer than {MAX_COMPUTER_ICON} characters")
        with self._lock:
            now = self._now()
            computer = _Computer(
                str(uuid.uuid4()),
                name,
                icon,
                created=now,
                ready_at=now + float(self.computer_ready_delay),
            )
            self._computers[computer.id] = computer
            return Reply.json(201, self._computer_json(computer, now))

    def _list_computers(self, request: _Request) -> Reply:
        return self._list_page(request, self._computers, self._computer_json)

    def _get_computer(self, request: _Request, computer_id: str) -> Reply:
        with self._lock:
            return Reply.json(
                200, self._computer_json(self._live_computer(computer_id), self._now())
            )

    def _delete_computer(self, request: _Request, computer_id: str) -> Reply:
        with self._lock:
            self._live_computer(computer_id).deleted = True
        return Reply(204)

    # -- artifacts

    def _workspace_known(self, workspace_id: str) -> bool:
        computer = self._computers.get(workspace_id)
        if computer is not None:
            return not computer.deleted
        return workspace_id in self._workspaces or workspace_id in self._artifacts

    def _workspace_artifacts(self, workspace_id: str, now: float) -> dict:
        """The workspace's artifacts, with those of prompts that succeeded by `now` added."""
        if not self._workspace_known(workspace_id):
            raise _HttpError(404, "not_found", f"Workspace {workspace_id} not found.")
        files = self._artifacts.setdefault(workspace_id, {})
        for task in self._tasks.values():
            if task.workspace_id != workspace_id:
                continue
            for number, prompt in enumerate(task.prompts, 1):
                if prompt.artifacts_left or prompt.silent or prompt.status(now) != "succeeded":
                    continue
                prompt.artifacts_left = True
                report = (
                    f"# Report {number}\n\nPrompt: {_without_markers(prompt.text)}\n\n"
                    f"{final_result_for(prompt.text)}\n"
                ).encode()
                name = f"report-{number}.md"
                files[name] = _Artifact(
                    name, len(report), _content_type_for(name), prompt.ends, data=report
                )
                name = f"output-{number}.bin"
                files[name] = _Artifact(
                    name,
                    int(self.artifact_bytes_knob),
                    "application/octet-stream",
                    prompt.ends,
                    seed=f"{workspace_id}/{name}",
                )
        return files

    def _artifact_json(self, artifact: _Artifact) -> dict:
        return {
            self.artifact_name_field: artifact.name,
            "size": artifact.size,
            "contentType": artifact.content_type,
            "updatedAt": self._iso(artifact.updated),
        }

    def _list_artifacts(self, request: _Request, workspace_id: str) -> Reply:
        with self._lock:
            files = self._workspace_artifacts(workspace_id, self._now())
            entries = [
                self._artifact_json(item)
                for item in sorted(files.values(), key=lambda item: item.name)
            ]
        if self.artifacts_wrapper == "bare":
            return Reply.json(200, entries)
        return Reply.json(200, {self.artifacts_wrapper: entries})

    def _artifact(self, workspace_id: str, name: str) -> _Artifact:
        artifact = self._workspace_artifacts(workspace_id, self._now()).get(name)
        if artifact is None:
            raise _HttpError(
                404, "not_found", f"Artifact {name!r} not found in workspace {workspace_id}."
            )
        return artifact

    def _get_artifact(self, request: _Request, workspace_id: str, name: str):
        with self._lock:
            artifact = self._artifact(workspace_id, name)
        if self.artifact_download == "direct":
            return _ByteStream(artifact)
        expires = int(time.time() + self.upload_url_ttl)
        signature = self._sign_download(workspace_id, name, expires)
        location = (
            f"{self.upload_base_url}/artifacts/{quote(workspace_id, safe='')}/"
            f"{quote(name, safe='')}?expires={expires}&signature={signature}"
        )
        return Reply(302, headers={"Location": location})

    def _sign_download(self, workspace_id: str, name: str, expires) -> str:
        message = f"GET\n{workspace_id}\n{name}\n{expires}".encode()
        return hmac.new(self._signing_key, message, "sha256").hexdigest()

    def _download_target(self, path: str, query: dict):
        """The _Artifact a signed download URL names, or the storage host's XML error."""
        match = _ARTIFACT_DOWNLOAD_RE.fullmatch(path)
        expires, signature = query.get("expires", ""), query.get("signature", "")
        if match is None or not expires.isdigit():
            return _xml_error(403, "SignatureDoesNotMatch", "The signature is missing.")
        workspace_id, name = unquote(match.group(1)), unquote(match.group(2))
        if not hmac.compare_digest(signature, self._sign_download(workspace_id, name, expires)):
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if time.time() >= int(expires):
            return _xml_error(403, "ExpiredToken", "The provided token has expired.")
        with self._lock:
            artifact = self._artifacts.get(workspace_id, {}).get(name)
        if artifact is None:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        return artifact

    def _post_artifacts(self, request: _Request, workspace_id: str) -> Reply:
        with self._lock:
            self._workspace_artifacts(workspace_id, self._now())
        parts = _multipart_files(request.headers, request.raw or b"")
        with self._lock:
            files = self._workspace_artifacts(workspace_id, self._now())
            now = self._now()
            made = []
            for filename, content_type, data in parts:
                if filename in files:
                    files[filename].discard()
                files[filename] = _Artifact(filename, len(data), content_type, now, data=data)
                made.append(self._artifact_json(files[filename]))
        if self.artifact_upload_wrapper == "bare":
            return Reply.json(201, made)
        return Reply.json(201, {self.artifact_upload_wrapper: made})

    def _artifact_upload_url(self, request: _Request, workspace_id: str) -> Reply:
        with self._lock:
            self._workspace_artifacts(workspace_id, self._now())
        body = request.json_object()
        filename = _valid_artifact_name(body.get("filename"))
        content_type = body.get("contentType")
        if content_type is not None and (
            not isinstance(content_type, str) or not content_type.strip()
        ):
            raise _invalid("contentType must be a non-empty string")
        slot = _ArtifactUpload(str(uuid.uuid4()), workspace_id, filename, content_type)
        with self._lock:
            self._artifact_uploads[slot.id] = slot
        expires = int(time.time() + self.upload_url_ttl)
        upload_url = (
            f"{self.upload_base_url}/artifact-upload/{slot.id}?expires={expires}"
            f"&signature={self._sign(slot.id, expires)}"
        )
        return Reply.json(
            201,
            {
                self.upload_url_field: upload_url,
                "filename": filename,
                "expiresAt": _iso_wall(expires),
            },
        )

    def _artifact_upload_target(self, path: str, query: dict):
        match = _ARTIFACT_UPLOAD_RE.fullmatch(path)
        expires, signature = query.get("expires", ""), query.get("signature", "")
        if (
            match is None
            or not expires.isdigit()
            or not hmac.compare_digest(signature, self._sign(match.group(1), expires))
        ):
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if time.time() >= int(expires):
            return _xml_error(403, "ExpiredToken", "The provided token has expired.")
        with self._lock:
            slot = self._artifact_uploads.get(match.group(1))
        if slot is None:
            return _xml_error(404, "NoSuchUpload", "The requested upload was not found.")
        return slot

    def _artifact_uploaded(
        self, slot: _ArtifactUpload, path: str, size: int, content_type: str | None
    ) -> None:
        with self._lock:
            files = self._artifacts.setdefault(slot.workspace_id, {})
            if slot.filename in files:
                files[slot.filename].discard()
            files[slot.filename] = _Artifact(
                slot.filename,
                size,
                slot.content_type or content_type or _content_type_for(slot.filename),
                self._now(),
                path=path,
            )

    def _delete_artifact(self, request: _Request, workspace_id: str, name: str) -> Reply:
        with self._lock:
            self._artifact(workspace_id, name).discard()
            del self._artifacts[workspace_id][name]
        return Reply(204)

    def _delete_all_artifacts(self, request: _Request, workspace_id: str) -> Reply:
        with self._lock:
            files = self._workspace_artifacts(workspace_id, self._now())
            for artifact in files.values():
                artifact.discard()
            files.clear()
        return Reply(204)

    # -- webhooks

    def _webhook_json(self, hook: _Webhook) -> dict:
        return {
            "id": hook.id,
            "url": hook.url,
            "events": list(hook.events),
            "description": hook.description,
            "hasSecret": hook.secret is not None,
            "isActive": True,
            "createdAt": self._iso(hook.created),
            "lastTriggeredAt": None,
            "failureCount": 0,
        }

    def _add_webhook(self, request: _Request) -> Reply:
        body = request.json_object()
        url = body.get("url")
        if url is None:
            raise _invalid("url is required")
        if not isinstance(url, str) or len(url) > MAX_WEBHOOK_URL:
            raise _invalid(f"url must be a string of at most {MAX_WEBHOOK_URL} characters")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or any(ch.isspace() for ch in url):
            raise _invalid("url must be an https:// URL")
        events = body.get("events")
        if events is None:
            raise _invalid("events is required")
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(event, str) for event in events)
        ):
            raise _invalid("events must be a non-empty list of event names")
        unknown = [event for event in events if event not in WEBHOOK_EVENTS]
        if unknown:
            raise _invalid(
                f"unknown event(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENTS)}"
            )
        texts = {}
        for name in ("description", "secret"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_WEBHOOK_TEXT):
                raise _invalid(f"{name} must be a string of at most {MAX_WEBHOOK_TEXT} characters")
            texts[name] = value
        with self._lock:
            for hook in self._webhooks.values():
                if self.webhook_dedupe and hook.url == url:
                    return Reply.json(200, self._webhook_json(hook))
            if len(self._webhooks) >= MAX_WEBHOOKS:
                raise _HttpError(
                    400, "limit_exceeded", f"at most {MAX_WEBHOOKS} webhooks per organization"
                )
            hook = _Webhook(
                str(uuid.uuid4()),
                url,
                list(dict.fromkeys(events)),
                texts["description"],
                texts["secret"],
                self._now(),
            )
            self._webhooks[hook.id] = hook
            return Reply.json(201, self._webhook_json(hook))

    def _list_webhooks(self, request: _Request) -> Reply:
        with self._lock:
            entries = [self._webhook_json(hook) for hook in self._webhooks.values()]
        return Reply.json(200, {self.webhooks_wrapper: entries})

    def _live_webhook(self, webhook_id: str) -> _Webhook:
        hook = self._webhooks.get(webhook_id)
        if hook is None:
            raise _HttpError(404, "not_found", f"Webhook {webhook_id} not found.")
        return hook

    def _get_webhook(self, request: _Request, webhook_id: str) -> Reply:
        with self._lock:
            return Reply.json(200, self._webhook_json(self._live_webhook(webhook_id)))

    def _delete_webhook(self, request: _Request, webhook_id: str) -> Reply:
        with self._lock:
            self._live_webhook(webhook_id)
            del self._webhooks[webhook_id]
        return Reply(204)

    def _webhook_public_key(self, request: _Request) -> Reply:
        return Reply.json(200, {self.public_key_field: self._public_key, "algorithm": "ed25519"})

    @staticmethod
    def _make_public_key(seed) -> str:
        """A well-formed Ed25519 SubjectPublicKeyInfo PEM (the server signs nothing with it)."""
        raw = hashlib.sha256(f"fake-rebyte-webhook-key/{seed}".encode()).digest()
        der = bytes.fromhex("302a300506032b6570032100") + raw
        return (
            "-----BEGIN PUBLIC KEY-----\n"
            + base64.b64encode(der).decode()
            + "\n-----END PUBLIC KEY-----\n"
        )

    # -- JSON shapes

    def _seen(self, prompt: _Prompt, now: float) -> tuple:
        """(status, completed_at) of a prompt as task reads show it: task_read_lag seconds
        after its end it still reads running (the events stream knows sooner)."""
        status, completed = prompt.status(now), prompt.completed_at(now)
        if status in TERMINAL and now < completed + float(self.task_read_lag):
            return "running", None
        return status, completed

    def _task_seen(self, task: _Task, now: float) -> tuple:
        """(status, completed_at, the latest prompt's seen status) as task reads show it."""
        seen = [self._seen(prompt, now) for prompt in task.prompts]
        if any(status not in TERMINAL for status, _ in seen):
            return "running", None, seen[-1][0]
        return (TASK_STATUS_OF_PROMPT[seen[-1][0]], max(done for _, done in seen), seen[-1][0])

    def _prompt_times(self, prompt: _Prompt, now: float) -> dict:
        submitted = self._iso(prompt.submitted)
        if self.submitted_equals_completed:
            return {"submittedAt": submitted, "completedAt": submitted}
        return {"submittedAt": submitted, "completedAt": self._iso(self._seen(prompt, now)[1])}

    def _shown_answer(self, prompt: _Prompt, now: float) -> str | None:
        """A prompt's finalResult as the task view and the done message show it."""
        answer = prompt.final_result(now, float(self.final_result_delay))
        if answer is not None and self.empty_final_result:
            return ""
        return answer

    def _task_final_result(self, task: _Task, now: float, latest_status: str) -> str | None:
        if latest_status != "succeeded":
            return None
        return self._shown_answer(task.prompts[-1], now)

    def _summary_json(self, task: _Task, now: float) -> dict:
        status, completed, _ = self._task_seen(task, now)
        row = {
            "id": task.id,
            "url": f"{APP_URL}/run/{task.id}",
            "title": task.title,
            "executor": task.executor,
            "model": task.model,
            "createdAt": self._iso(task.created),
            "completedAt": self._iso(completed),
        }
        if self.task_view_extras:
            row["workspaceId"] = task.workspace_id
        if self.list_status:
            row["status"] = status
        return row

    def _task_json(self, task: _Task, now: float) -> dict:
        status, completed, latest = self._task_seen(task, now)
        view = {
            "id": task.id,
            "url": f"{APP_URL}/run/{task.id}",
            "status": status,
            "title": task.title,
            "executor": task.executor,
            "model": task.model,
            "createdAt": self._iso(task.created),
            "completedAt": self._iso(completed),
            "prompts": [
                {
                    "id": prompt.id,
                    "status": self._seen(prompt, now)[0],
                    **self._prompt_times(prompt, now),
                }
                for prompt in task.prompts
            ],
            "finalResult": self._task_final_result(task, now, latest),
        }
        if self.task_view_extras:
            view["workspaceId"] = task.workspace_id
            view["visibility"] = task.visibility
        return view

    def _done_word(self, status: str) -> str:
        """The word a done message carries: the prompt's, or (knob) the task's."""
        return TASK_STATUS_OF_PROMPT[status] if self.done_status_words == "task" else status

    def _events_json(self, prompt: _Prompt, now: float) -> list:
        return [
            {
                "seq": seq,
                "timestamp": self._iso(moment),
                "promptId": prompt.id,
                "eventType": kind,
                "payload": payload,
                "eventKey": f"{prompt.id}:{seq}",
            }
            for seq, (moment, kind, payload) in enumerate(prompt.events(now))
        ]


def _with_unknown_field(value):
    """A copy of a JSON value with UNKNOWN_FIELD added to each object in it."""
    if isinstance(value, dict):
        name, marker = UNKNOWN_FIELD
        return {**{key: _with_unknown_field(item) for key, item in value.items()}, name: marker}
    if isinstance(value, list):
        return [_with_unknown_field(item) for item in value]
    return value


def _int_param(query: dict, name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
    if not re.fullmatch(r"\d{1,12}", raw):
        raise _invalid(f"{name} must be an integer {bounds}")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        raise _invalid(f"{name} must be an integer {bounds}")
    return value


def _iso_wall(seconds: float) -> str:
    wall = datetime.fromtimestamp(seconds, timezone.utc)
    return wall.isoformat(timespec="seconds").replace("+00:00", "Z")


def _is_multipart(headers) -> bool:
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == "multipart/form-data"


def _valid_artifact_name(name) -> str:
    if name is None:
        raise _invalid("filename is required")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("filename must be a non-empty string")
    if len(name) > MAX_FILENAME_CHARS:
        raise _invalid(f"filename is longer than {MAX_FILENAME_CHARS} characters")
    if "\0" in name:
        raise _invalid("filename must not contain NUL")
    return name


def _multipart_files(headers, raw: bytes) -> list:
    """(filename, content type, bytes) of each part named "file" of a multipart/form-data body.

    A small splitter on the boundary (the body is at most MAX_ARTIFACT_FORM bytes); each
    part's headers (UTF-8, as browsers and requests send them; filename* works too) go
    through the stdlib's header parser.
    """
    if not _is_multipart(headers):
        raise _invalid(
            "upload artifacts as multipart/form-data with parts named 'file' "
            "(large files: POST .../artifacts/upload-url)"
        )
    declared = BytesHeaderParser().parsebytes(
        b"Content-Type: " + (headers.get("Content-Type") or "").encode("latin-1") + b"\r\n\r\n"
    )
    boundary = declared.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        raise _invalid("multipart/form-data needs a boundary parameter")
    delimiter = b"--" + boundary.encode("latin-1")
    pieces = raw.split(b"\r\n" + delimiter)
    if not pieces[0].startswith(delimiter) or not pieces[-1].startswith(b"--"):
        raise _invalid("malformed multipart/form-data body")
    files = []
    for piece in [pieces[0][len(delimiter) :], *pieces[1:-1]]:
        head, separator, data = piece.partition(b"\r\n\r\n")
        if not separator or not head.startswith(b"\r\n"):
            raise _invalid("malformed multipart/form-data part")
        try:
            part = HeaderParser().parsestr(head[2:].decode("utf-8") + "\r\n\r\n")
        except UnicodeDecodeError:
            raise _invalid("multipart part headers must be UTF-8") from None
        if part.get_param("name", header="content-disposition") != "file":
            continue
        filename = part.get_filename()
        if isinstance(filename, str):  # the HTML form encoding of these three characters
            for escaped, character in (("%22", '"'), ("%0D", "\r"), ("%0A", "\n")):
                filename = filename.replace(escaped, character)
        filename = _valid_artifact_name(filename)
        content_type = (
            part.get_content_type() if part.get("Content-Type") else (_content_type_for(filename))
        )
        files.append((filename, content_type, data))
    if not files:
        raise _invalid("no part named 'file' in the multipart/form-data body")
    return files


# --------------------------------------------------------------------------------------------
# HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple, fake: FakeRebyte, listener: str):
        self.fake = fake
        self.listener = listener
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which may wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeRebyte/1.0"
    # Headers and body go out as two writes: with Nagle on, the body would wait for the
    # client's delayed ACK, about 40 ms per request on a kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.fake = self.server.fake
        self.connection_id = self.fake._register_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.fake._unregister_connection(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args) -> None:  # quiet: the request log says it all
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ---- one request -----------------------------------------------------------------------

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        entry = self.fake._record(
            self.server.listener,
            self.command,
            parts.path,
            query,
            dict(self.headers.items()),
            self.connection_id,
        )
        fault, after = self.fake._choose_fault(self.command, parts.path)
        entry["fault"] = fault
        try:
            if self.server.listener == "upload":
                self._serve_upload(entry, parts.path, query, fault, after)
            else:
                self._serve_api(entry, parts.path, query, fault, after)
        except _HttpError as error:  # the request itself is malformed (its framing)
            error.reply.close = True
            try:
                self._send(entry, error.reply)
            except OSError:
                self.close_connection = True
        except (OSError, _Abort):  # the client went away, or stop() cut the socket
            self.close_connection = True
        finally:
            self.fake._finish(entry)

    def _serve_api(self, entry: dict, path: str, query: dict, fault, after: bool) -> None:
        raw, size, too_large = self._read_api_body()
        entry["body_bytes"] = size
        try:
            entry["json"] = json.loads(raw) if raw and not _is_multipart(self.headers) else None
        except ValueError:
            pass
        if fault and not after and not self._cuts_a_download(fault, path):
            self._answer_fault(entry, fault, None, path)
            return
        reply = self.fake._api(_Request(self.command, path, query, self.headers, raw), too_large)
        if isinstance(reply, (_EventStream, _ByteStream)):
            if fault == "short-body" and isinstance(reply, _ByteStream):
                self._stream_bytes(entry, reply.artifact, cut=True)
            elif fault:
                self._answer_fault(entry, fault, None, path)
            elif isinstance(reply, _ByteStream):
                self._stream_bytes(entry, reply.artifact)
            else:
                self._stream_events(entry, reply)
        elif fault:
            self._answer_fault(entry, fault, reply, path)
        else:
            self._send(entry, reply)

    def _cuts_a_download(self, fault, path: str) -> bool:
        """A "short-body" fault on an artifact download cuts the real bytes half-way."""
        return (
            fault == "short-body"
            and self.command in ("GET", "HEAD")
            and bool(
                re.fullmatch(_ARTIFACTS + "/[^/]+", path) or _ARTIFACT_DOWNLOAD_RE.fullmatch(path)
            )
        )

    def _serve_upload(self, entry: dict, path: str, query: dict, fault, after: bool) -> None:
        if fault and not after and not self._cuts_a_download(fault, path):
            entry["body_bytes"] = self._drop_body(limit=None)
            self._answer_fault(entry, fault, None, path)
            return
        if self.command in ("GET", "HEAD") and path.startswith("/artifacts/"):
            target = self.fake._download_target(path, query)
            if isinstance(target, _Artifact) and fault in (None, "short-body"):
                self._stream_bytes(entry, target, cut=fault == "short-body")
                return
            reply = target if isinstance(target, Reply) else Reply(200)
        elif self.command == "PUT" and path.startswith("/artifact-upload/"):
            reply = self._artifact_put(entry, path, query)
        else:
            reply = self._upload(entry, path, query)
        if fault:
            self._answer_fault(entry, fault, reply, path)
        else:
            self._send(entry, reply)

    def _upload(self, entry: dict, path: str, query: dict) -> Reply:
        """The storage host: a signed PUT with a Content-Length, streamed to disk or counted."""
        if self.command != "PUT":
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                405, "MethodNotAllowed", "Only PUT is accepted here.", headers={"Allow": "PUT"}
            )
        length = self._content_length()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower() or length is None:
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                411,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
                close=True,
            )
        record = self.fake._upload_target(path, query)
        if isinstance(record, Reply):
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return record
        sent_type = self.headers.get("Content-Type")
        if sent_type != record.content_type:
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                f"Content-Type {sent_type!r} does not match the signed {record.content_type!r}.",
            )
        received = self._store_body(record, length)
        entry["body_bytes"] = received
        if received < length:
            raise ConnectionAbortedError("the client sent less than its Content-Length")
        self.fake._upload_finished(record, received)
        return Reply(200, headers={"ETag": f'"{secrets.token_hex(16)}"'})

    def _artifact_put(self, entry: dict, path: str, query: dict) -> Reply:
        """A signed artifact upload: the streamed body becomes the artifact (on disk)."""
        length = self._content_length()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower() or length is None:
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                411,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
                close=True,
            )
        slot = self.fake._artifact_upload_target(path, query)
        if isinstance(slot, Reply):
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return slot
        sent_type = self.headers.get("Content-Type")
        if slot.content_type is not None and sent_type != slot.content_type:
            entry["body_bytes"] = self._drop_body(limit=MAX_DRAIN)
            return _xml_error(
                403,
                "SignatureDoesNotMatch",
                f"Content-Type {sent_type!r} does not match the signed {slot.content_type!r}.",
            )
        handle, temporary = tempfile.mkstemp(dir=self.fake._artifact_dir.name)
        received = 0
        with os.fdopen(handle, "wb") as out:
            buffer = memoryview(bytearray(CHUNK))
            while received < length:
                count = self.rfile.readinto(buffer[: min(CHUNK, length - received)])
                if not count:
                    break
                out.write(buffer[:count])
                received += count
        entry["body_bytes"] = received
        if received < length:
            os.unlink(temporary)
            raise ConnectionAbortedError("the client sent less than its Content-Length")
        self.fake._artifact_uploaded(slot, temporary, received, sent_type)
        return Reply(200, headers={"ETag": f'"{secrets.token_hex(16)}"'})

    def _stream_bytes(self, entry: dict, artifact: _Artifact, cut: bool = False) -> None:
        """An artifact's bytes, CHUNK at a time, with Content-Length (never held whole).

        cut=True (the "short-body" fault): the headers promise every byte, half is sent,
        then the connection closes: a download interrupted half-way.
        """
        request_id = "req_" + secrets.token_hex(12)
        entry["request_id"], entry["status"] = request_id, 200
        self.send_response(200)
        self.send_header("X-Request-Id", request_id)
        self.send_header("Content-Type", artifact.content_type)
        self.send_header("Content-Length", str(artifact.size))
        self.end_headers()
        if self.command == "HEAD":
            return
        left = artifact.size // 2 if cut else artifact.size
        for piece in artifact.chunks():
            if self.fake._stopping.is_set():
                raise _Abort()
            self.wfile.write(piece[:left])
            left -= len(piece)
            if left <= 0:
                break
        if cut:
            self.close_connection = True

    def _store_body(self, record: _File, length: int) -> int:
        """Copy the body in CHUNK pieces to upload_dir (replacing at the end) or count it."""
        upload_dir = self.fake.upload_dir
        out = temporary = None
        if upload_dir is not None:
            handle, temporary = tempfile.mkstemp(dir=upload_dir, prefix=".upload-")
            out = os.fdopen(handle, "wb")
        buffer = memoryview(bytearray(CHUNK))
        received = 0
        try:
            while received < length:
                count = self.rfile.readinto(buffer[: min(CHUNK, length - received)])
                if not count:
                    break
                if out is not None:
                    out.write(buffer[:count])
                received += count
        finally:
            if out is not None:
                out.close()
                if received == length:
                    os.replace(temporary, os.path.join(upload_dir, record.filename))
                else:
                    os.unlink(temporary)
        return received

    # ---- bodies ----------------------------------------------------------------------------

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise _HttpError(400, "validation_error", f"Invalid Content-Length {raw!r}.")
        return int(raw)

    def _read_api_body(self) -> tuple:
        """(body or None when too large, bytes received, too_large)."""
        limit = MAX_ARTIFACT_FORM if _is_multipart(self.headers) else MAX_JSON_BODY
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = self._content_length() or 0
        if length > limit:
            return None, self._drop_body(limit=MAX_DRAIN), True
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            raise ConnectionAbortedError("the client sent less than its Content-Length")
        return raw, length, False

    def _read_chunked(self, limit: int) -> tuple:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "validation_error", "Malformed chunked body.") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                break
            total += size
            if total > MAX_DRAIN:
                self.close_connection = True
                return None, total, True
            chunk = self.rfile.read(size)
            self.rfile.readline(8)
            if total <= limit:
                parts.append(chunk)
        if total > limit:
            return None, total, True
        return b"".join(parts), total, False

    def _drop_body(self, limit: int | None) -> int:
        """Read and forget the body (so the connection stays usable); close if it is too big."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(0)[1]  # past MAX_DRAIN it gives up and closes
        length = self._content_length()
        if length is not None and limit is not None and length > limit:
            self.close_connection = True
            return 0
        dropped = 0
        while length and dropped < length:
            piece = self.rfile.read(min(CHUNK, length - dropped))
            if not piece:
                break
            dropped += len(piece)
        return dropped

    # ---- answers ---------------------------------------------------------------------------

    def _send(self, entry: dict, reply: Reply) -> None:
        request_id = "req_" + secrets.token_hex(12)
        entry["request_id"], entry["status"] = request_id, reply.status  # before the client
        self.send_response(reply.status)  # can read it
        self.send_header("X-Request-Id", request_id)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        if reply.close or self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.body and self.command != "HEAD":
            self.wfile.write(reply.body)

    def _answer_fault(self, entry: dict, fault: str, real: Reply | None, path: str) -> None:
        if fault == "reset":
            self._reset()
        elif fault == "stall":
            self._stall()
        elif fault == "short-body":
            body = real.body if real is not None and real.body else b'{"id": "0123456789"}'
            status = entry["status"] = _fault_success_status(real, self.command, path)
            entry["request_id"] = "req_" + secrets.token_hex(12)
            self.send_response(status)
            self.send_header("X-Request-Id", entry["request_id"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
        else:
            self._send(entry, _fault_reply(fault, real, self.command, path, self.fake.retry_after))

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST, the client sees a connection reset."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the file holds a reference: the socket closes only without it
        self.connection.close()

    def _stall(self) -> None:
        """Answer nothing until stop() or until the client closes its end."""
        self.close_connection = True
        self.connection.settimeout(0.1)
        while not self.fake._stopping.is_set():
            try:
                if not self.connection.recv(1, socket.MSG_PEEK):
                    return
                self.fake._stopping.wait(0.1)  # the client sent more; keep ignoring it
            except socket.timeout:
                continue
            except OSError:
                return

    def _stream_events(self, entry: dict, stream: _EventStream) -> None:
        """Server-sent events of one prompt: replay, live events, then done; then close."""
        fake, prompt = self.fake, stream.prompt
        request_id = "req_" + secrets.token_hex(12)
        entry["request_id"], entry["status"] = request_id, 200
        self.send_response(200)
        self.send_header("X-Request-Id", request_id)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
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

    def _write_sse(self, name: str, data: dict) -> None:
        if self.fake.unknown_field:
            data = _with_unknown_field(data)
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

    def _drop_stream(self) -> None:
        if self.fake.events_drop_mode == "reset":
            self._reset()
        self.close_connection = True


# --------------------------------------------------------------------------------------------
# Command line


class _JsonLinesSink:
    """Writes each finished request-log entry as one JSON line (for --log)."""

    def __init__(self, path: str):
        self._file = open(path, "a", encoding="utf-8")  # closed by close()
        self._lock = threading.Lock()

    def __call__(self, entry: dict) -> None:
        line = json.dumps(entry, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


# The shape and habit knobs, each a command-line option of the same name (default as here).
_CLI_SHAPE_KNOBS = {
    "task_view_extras": False,
    "list_status": False,
    "done_status_words": "prompt",
    "task_read_lag": 0.0,
    "events_route": True,
    "final_result_delay": 0.0,
    "empty_final_result": False,
    "content_prompt_ids": True,
    "service_executor": None,
    "service_model": None,
    "submitted_equals_completed": False,
    "webhook_dedupe": False,
    "cancel_answer": "status",
    "artifact_upload_wrapper": "data",
    "upload_url_field": "uploadUrl",
    "public_key_field": "publicKey",
    "unknown_field": False,
}


def _parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", default=DEFAULT_KEY, help="API key to accept")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--upload-host", default="127.0.0.2")
    parser.add_argument("--upload-port", type=int, default=0)
    parser.add_argument("--provision-delay", type=float, default=0.0, metavar="S")
    parser.add_argument("--prompt-duration", type=float, default=0.5, metavar="S")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0, metavar="R")
    parser.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_RANDOM_FAULTS),
        help="comma-separated, from: " + ",".join(FAULT_KINDS),
    )
    parser.add_argument(
        "--fault-route",
        nargs=2,
        action="append",
        metavar=("METHOD", "REGEX"),
        dest="fault_routes",
        help="limit random faults to these (repeatable)",
    )
    parser.add_argument(
        "--fault-after",
        action="store_true",
        help="random faults answer after the request was processed",
    )
    parser.add_argument("--retry-after", default="1")
    parser.add_argument("--upload-url-ttl", type=float, default=3600.0, metavar="S")
    parser.add_argument("--seed-tasks", type=int, default=0, metavar="N")
    parser.add_argument("--events-early-done", action="store_true")
    parser.add_argument("--events-drop-after", type=int, default=None, metavar="N")
    parser.add_argument("--events-drops", type=int, default=1, metavar="N")
    parser.add_argument("--events-drop-mode", choices=("reset", "eof"), default="reset")
    parser.add_argument("--keepalive-interval", type=float, default=2.0, metavar="S")
    parser.add_argument("--upload-dir", default=None, metavar="DIR")
    parser.add_argument("--computer-ready-delay", type=float, default=0.5, metavar="S")
    parser.add_argument("--artifact-bytes", type=int, default=65536, metavar="N")
    parser.add_argument(
        "--artifacts-wrapper", choices=_CHOICES["artifacts_wrapper"], default="data"
    )
    parser.add_argument(
        "--artifact-name-field", choices=_CHOICES["artifact_name_field"], default="filename"
    )
    parser.add_argument(
        "--artifact-download", choices=_CHOICES["artifact_download"], default="direct"
    )
    parser.add_argument("--webhooks-wrapper", choices=_CHOICES["webhooks_wrapper"], default="data")
    for name, default in _CLI_SHAPE_KNOBS.items():
        option = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, float):
            parser.add_argument(option, type=float, default=default, metavar="S")
        elif name in _CHOICES:
            parser.add_argument(option, choices=_CHOICES[name], default=default)
        else:
            parser.add_argument(option, default=default, metavar="NAME")
    parser.add_argument(
        "--log", default=None, metavar="FILE", help="append the request log here as JSON lines"
    )
    parser.add_argument(
        "--plant-artifact",
        action="append",
        default=[],
        type=_planted,
        metavar="WORKSPACE/NAME:SIZE",
        dest="planted",
        help="add_artifact() with SIZE generated bytes before serving "
        "(repeatable; the workspace need not exist)",
    )
    return parser.parse_args(argv)


def _planted(value: str) -> tuple:
    """(workspace id, name, size) from WORKSPACE/NAME:SIZE (the name may hold / and :)."""
    where, _, size = value.rpartition(":")
    workspace_id, _, name = where.partition("/")
    if not workspace_id or not name or not size.isdigit():
        raise argparse.ArgumentTypeError(f"expected WORKSPACE/NAME:SIZE, got {value!r}")
    return workspace_id, name, int(size)


def main(argv=None) -> int:
    args = _parse_args(argv)
    sink = _JsonLinesSink(args.log) if args.log else None
    server = FakeRebyte(
        args.key,
        host=args.host,
        port=args.port,
        upload_host=args.upload_host,
        upload_port=args.upload_port,
        provision_delay=args.provision_delay,
        prompt_duration=args.prompt_duration,
        seed=args.seed,
        fault_rate=args.fault_rate,
        fault_kinds=[kind for kind in args.fault_kinds.split(",") if kind],
        fault_routes=args.fault_routes,
        fault_after=args.fault_after,
        retry_after=args.retry_after,
        upload_url_ttl=args.upload_url_ttl,
        seed_tasks=args.seed_tasks,
        events_early_done=args.events_early_done,
        events_drop_after=args.events_drop_after,
        events_drops=args.events_drops,
        events_drop_mode=args.events_drop_mode,
        keepalive_interval=args.keepalive_interval,
        upload_dir=args.upload_dir,
        log_sink=sink,
        computer_ready_delay=args.computer_ready_delay,
        artifact_bytes=args.artifact_bytes,
        artifacts_wrapper=args.artifacts_wrapper,
        artifact_name_field=args.artifact_name_field,
        artifact_download=args.artifact_download,
        webhooks_wrapper=args.webhooks_wrapper,
        **{name: getattr(args, name) for name in _CLI_SHAPE_KNOBS},
    )
    for workspace_id, name, size in args.planted:
        server.add_artifact(workspace_id, name, size=size)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    server.start()
    print(server.base_url, flush=True)
    print(server.upload_base_url, file=sys.stderr, flush=True)
    while not stopped.wait(0.2):
        pass
    server.stop()
    if sink is not None:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
