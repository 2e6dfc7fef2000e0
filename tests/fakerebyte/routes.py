"""The routing of both listeners, in one place.

API listener: ROUTES, one entry per path pattern (matched against the whole path) with the
handler of each method; dispatch() checks the key and calls the handler with the path's
named groups, percent-decoded. Each handler is a method of one resource mixin of
FakeRebyte, called on the server. A POST listed in CREATES answers 201 (the status a
fault's faked success claims, too).

Storage listener (the upload host): storage_route() names what a request is for; the HTTP
handler (fakerebyte.http) serves it.
"""

from __future__ import annotations

import hmac
import json
import re
from urllib.parse import unquote

from fakerebyte.artifacts import _ARTIFACT_DOWNLOAD_RE, Artifacts
from fakerebyte.base import (
    API_KEY_HEADERS,
    MAX_ARTIFACT_FORM,
    MAX_JSON_BODY,
    Reply,
    _HttpError,
    _is_multipart,
    _Request,
    _with_unknown_field,
)
from fakerebyte.computers import Computers
from fakerebyte.files import Files
from fakerebyte.tasks import Tasks
from fakerebyte.webhooks import Webhooks

_TASK = r"/v1/tasks/(?P<task_id>[^/]+)"
_COMPUTER = r"/v1/agent-computers/(?P<computer_id>[^/]+)"
_ARTIFACTS = r"/v1/workspaces/(?P<workspace_id>[^/]+)/artifacts"
_WEBHOOK = r"/v1/webhooks/(?P<webhook_id>[^/]+)"
_ARTIFACT = _ARTIFACTS + "/(?P<name>[^/]+)"

ROUTES = [
    (re.compile(r"/v1/files"), {"POST": Files._create_file}),
    (re.compile(r"/v1/tasks"), {"GET": Tasks._list_tasks, "POST": Tasks._create_task}),
    (re.compile(_TASK), {"GET": Tasks._get_task, "DELETE": Tasks._delete_task}),
    (re.compile(_TASK + "/prompts"), {"POST": Tasks._add_prompt}),
    (re.compile(_TASK + "/visibility"), {"PATCH": Tasks._set_visibility}),
    (re.compile(_TASK + "/cancel"), {"POST": Tasks._cancel}),
    (re.compile(_TASK + "/content"), {"GET": Tasks._content}),
    (re.compile(_TASK + "/events"), {"GET": Tasks._events}),
    (
        re.compile(r"/v1/agent-computers"),
        {"GET": Computers._list_computers, "POST": Computers._create_computer},
    ),
    (
        re.compile(_COMPUTER),
        {"GET": Computers._get_computer, "DELETE": Computers._delete_computer},
    ),
    (
        re.compile(_ARTIFACTS),
        {
            "GET": Artifacts._list_artifacts,
            "POST": Artifacts._post_artifacts,
            "DELETE": Artifacts._delete_all_artifacts,
        },
    ),
    (re.compile(_ARTIFACTS + "/upload-url"), {"POST": Artifacts._artifact_upload_url}),
    (
        re.compile(_ARTIFACT),
        {
            "GET": Artifacts._get_artifact,
            "HEAD": Artifacts._get_artifact,
            "DELETE": Artifacts._delete_artifact,
        },
    ),
    (re.compile(r"/v1/webhooks"), {"GET": Webhooks._list_webhooks, "POST": Webhooks._add_webhook}),
    (re.compile(r"/v1/webhooks/public_key"), {"GET": Webhooks._webhook_public_key}),
    (re.compile(_WEBHOOK), {"GET": Webhooks._get_webhook, "DELETE": Webhooks._delete_webhook}),
]

# The POSTs that create something: 201 on success.
CREATES = [
    re.compile(pattern)
    for pattern in (
        r"/v1/files",
        r"/v1/tasks",
        r"/v1/agent-computers",
        r"/v1/webhooks",
        _TASK + "/prompts",
        _ARTIFACTS,
        _ARTIFACTS + "/upload-url",
    )
]


def _success_status(method: str, path: str) -> int:
    creates = method == "POST" and any(pattern.fullmatch(path) for pattern in CREATES)
    return 201 if creates else 200


def is_download(method: str, path: str) -> bool:
    """An artifact download, on the API (GET .../artifacts/NAME) or the storage listener."""
    return method in ("GET", "HEAD") and bool(
        re.fullmatch(_ARTIFACTS + "/[^/]+", path) or _ARTIFACT_DOWNLOAD_RE.fullmatch(path)
    )


def storage_route(method: str, path: str) -> str:
    """What a storage-listener request is: "download" (a signed artifact URL),
    "artifact-put" (an artifact upload-url slot) or "file-put" (a files slot: anything else,
    which the slot's checks refuse when it is not a signed PUT)."""
    if method in ("GET", "HEAD") and path.startswith("/artifacts/"):
        return "download"
    if method == "PUT" and path.startswith("/artifact-upload/"):
        return "artifact-put"
    return "file-put"


def dispatch(fake, request: _Request, too_large: bool):
    """Route one API request: a Reply, or a stream (_EventStream, _ByteStream) for the
    handler to send."""
    try:
        if request.path != "/v1" and not request.path.startswith("/v1/"):
            raise _HttpError(404, "not_found", f"No route for {request.path}.")
        if too_large:
            limit = MAX_ARTIFACT_FORM if _is_multipart(request.headers) else MAX_JSON_BODY
            raise _HttpError(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        _authenticate(fake.key, request.headers)
        allowed = []
        for pattern, handlers in ROUTES:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            handler = handlers.get(request.method)
            if handler is None:
                allowed += [method for method in handlers if method not in allowed]
                continue
            params = {name: unquote(value) for name, value in match.groupdict().items()}
            return _marked(fake, handler(fake, request, **params))
        if allowed:
            raise _HttpError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.path}.",
                headers={"Allow": ", ".join(allowed)},
            )
        raise _HttpError(404, "not_found", f"No route for {request.path}.")
    except _HttpError as error:
        return _marked(fake, error.reply)


def _marked(fake, reply):
    """With unknown_field on, every JSON object of the answer gains UNKNOWN_FIELD."""
    if (
        not fake.unknown_field
        or not isinstance(reply, Reply)
        or reply.content_type != "application/json"
        or not reply.body
    ):
        return reply
    reply.body = json.dumps(_with_unknown_field(json.loads(reply.body))).encode()
    return reply


def _authenticate(key: str, headers) -> None:
    supplied = [headers.get(name) for name in API_KEY_HEADERS if headers.get(name) is not None]
    if not supplied:
        raise _HttpError(401, "unauthorized", "Missing API key: send the API_KEY header.")
    expected = key.encode()
    if not any(hmac.compare_digest(value.encode(), expected) for value in supplied):
        raise _HttpError(401, "unauthorized", "Invalid API key.")
