"""The OpenAPI spec itself: valid, complete, and saying what the docs say.

The example bodies below are the ones in Rebyte's public pages (the curl calls
and sample answers), so the spec is held to the documentation, not to the
client or the local server.
"""

from __future__ import annotations

import copy
import json

import pytest
from openapi_check import (
    knob_names,
    operations,
    parse_sse,
    spec,
    validate_component,
    validate_request,
    validate_response,
    validate_sse,
)
from openapi_spec_validator import validate as validate_spec

DOCUMENTED = [
    ("POST", "/files"),
    ("POST", "/tasks"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("POST", "/tasks/{id}/prompts"),
    ("PATCH", "/tasks/{id}/visibility"),
    ("DELETE", "/tasks/{id}"),
    ("POST", "/tasks/{id}/cancel"),
    ("GET", "/tasks/{id}/content"),
    ("GET", "/tasks/{id}/events"),
    ("POST", "/agent-computers"),
    ("GET", "/agent-computers"),
    ("GET", "/agent-computers/{id}"),
    ("DELETE", "/agent-computers/{id}"),
    ("GET", "/workspaces/{id}/artifacts"),
    ("POST", "/workspaces/{id}/artifacts"),
    ("DELETE", "/workspaces/{id}/artifacts"),
    ("POST", "/workspaces/{id}/artifacts/upload-url"),
    ("GET", "/workspaces/{id}/artifacts/{filename}"),
    ("DELETE", "/workspaces/{id}/artifacts/{filename}"),
    ("POST", "/webhooks"),
    ("GET", "/webhooks"),
    ("GET", "/webhooks/{id}"),
    ("DELETE", "/webhooks/{id}"),
    ("GET", "/webhooks/public_key"),
]

TASK_ID = "550e8400-e29b-41d4-a716-446655440000"

# Request bodies of the documented curl examples.
DOC_REQUESTS = [
    ("POST", "/v1/files", {"filename": "data.csv"}),
    ("POST", "/v1/tasks", {"prompt": "Your task description here", "skills": ["deep-research"]}),
    (
        "POST",
        "/v1/tasks",
        {
            "prompt": "Analyze this CSV and summarize findings",
            "skills": ["data-analysis"],
            "files": [{"id": "file-123", "filename": "data-550e.csv"}],
        },
    ),
    (
        "POST",
        "/v1/tasks",
        {
            "prompt": "Add unit tests for the auth module",
            "skills": ["deep-research"],
            "githubUrl": "owner/repo",
            "branchName": "main",
        },
    ),
    ("POST", "/v1/tasks", {"prompt": "Set up the project", "githubUrl": "owner/repo"}),
    ("POST", "/v1/tasks", {"prompt": "Now add tests", "workspaceId": "660e8400-e29b"}),
    (
        "POST",
        "/v1/tasks",
        {"prompt": "Analyze this codebase for security issues", "skills": ["deep-research"]},
    ),
    (
        "POST",
        "/v1/tasks",
        {
            "prompt": "Extract text",
            "executor": "claude",
            "model": "lite",
            "skills": ["pdf", "github:owner/repo#slug"],
        },
    ),
    ("POST", f"/v1/tasks/{TASK_ID}/prompts", {"prompt": "Now fix the issues you found"}),
    (
        "POST",
        f"/v1/tasks/{TASK_ID}/prompts",
        {
            "prompt": "Look at this too",
            "skills": ["pdf"],
            "files": [{"id": "file-9", "filename": "more.pdf"}],
        },
    ),
    ("PATCH", f"/v1/tasks/{TASK_ID}/visibility", {"visibility": "public"}),
    ("PATCH", f"/v1/tasks/{TASK_ID}/visibility", {"visibility": "private"}),
    ("POST", "/v1/agent-computers", {"name": "My computer", "icon": "laptop"}),
    ("POST", "/v1/agent-computers", {}),
    (
        "POST",
        "/v1/workspaces/w-1/artifacts/upload-url",
        {"filename": "big.bin", "contentType": "application/octet-stream"},
    ),
    (
        "POST",
        "/v1/webhooks",
        {
            "url": "https://example.com/hook",
            "events": ["task.completed", "task.failed"],
            "description": "CI",
            "secret": "s3cret",
        },
    ),
]

BAD_REQUESTS = [
    ("missing prompt", "POST", "/v1/tasks", {"skills": ["pdf"]}, None),
    ("empty prompt", "POST", "/v1/tasks", {"prompt": ""}, None),
    ("over-long prompt", "POST", "/v1/tasks", {"prompt": "x" * 100_001}, None),
    ("prompt not a string", "POST", "/v1/tasks", {"prompt": 42}, None),
    ("unknown executor", "POST", "/v1/tasks", {"prompt": "p", "executor": "gpt"}, None),
    ("skills not a list", "POST", "/v1/tasks", {"prompt": "p", "skills": "pdf"}, None),
    (
        "file without id",
        "POST",
        "/v1/tasks",
        {"prompt": "p", "files": [{"filename": "a.csv"}]},
        None,
    ),
    (
        "file with extra field",
        "POST",
        "/v1/tasks",
        {"prompt": "p", "files": [{"id": "f", "filename": "a.csv", "size": 1}]},
        None,
    ),
    (
        "githubUrl as a URL",
        "POST",
        "/v1/tasks",
        {"prompt": "p", "githubUrl": "https://github.com/owner/repo"},
        None,
    ),
    ("unknown field", "POST", "/v1/tasks", {"prompt": "p", "priority": 1}, None),
    ("no body", "POST", "/v1/tasks", None, None),
    ("follow-up without prompt", "POST", f"/v1/tasks/{TASK_ID}/prompts", {}, None),
    (
        "over-long follow-up",
        "POST",
        f"/v1/tasks/{TASK_ID}/prompts",
        {"prompt": "x" * 100_001},
        None,
    ),
    ("bad visibility", "PATCH", f"/v1/tasks/{TASK_ID}/visibility", {"visibility": "secret"}, None),
    ("missing filename", "POST", "/v1/files", {"contentType": "text/csv"}, None),
    ("empty filename", "POST", "/v1/files", {"filename": ""}, None),
    ("over-long filename", "POST", "/v1/files", {"filename": "a" * 256}, None),
    ("limit 0", "GET", "/v1/tasks", None, {"limit": "0"}),
    ("limit 101", "GET", "/v1/tasks", None, {"limit": 101}),
    ("limit not a number", "GET", "/v1/tasks", None, {"limit": "ten"}),
    ("negative offset", "GET", "/v1/tasks", None, {"offset": "-1"}),
    ("unknown query parameter", "GET", "/v1/tasks", None, {"page": "2"}),
    ("bad include", "GET", f"/v1/tasks/{TASK_ID}/content", None, {"include": "logs"}),
    ("body on cancel", "POST", f"/v1/tasks/{TASK_ID}/cancel", {"reason": "x"}, None),
    ("undocumented endpoint", "GET", f"/v1/tasks/{TASK_ID}/result", None, None),
    ("undocumented method", "PUT", f"/v1/tasks/{TASK_ID}", {"prompt": "p"}, None),
    ("over-long computer name", "POST", "/v1/agent-computers", {"name": "n" * 201}, None),
    ("over-long icon", "POST", "/v1/agent-computers", {"icon": "i" * 51}, None),
    ("computer unknown field", "POST", "/v1/agent-computers", {"size": "xl"}, None),
    ("computers limit 101", "GET", "/v1/agent-computers", None, {"limit": 101}),
    ("upload-url without filename", "POST", "/v1/workspaces/w/artifacts/upload-url", {}, None),
    (
        "webhook over http",
        "POST",
        "/v1/webhooks",
        {"url": "http://example.com/h", "events": ["task.completed"]},
        None,
    ),
    ("webhook without events", "POST", "/v1/webhooks", {"url": "https://example.com/h"}, None),
    (
        "webhook no events",
        "POST",
        "/v1/webhooks",
        {"url": "https://example.com/h", "events": []},
        None,
    ),
    (
        "webhook unknown event",
        "POST",
        "/v1/webhooks",
        {"url": "https://example.com/h", "events": ["task.deleted"]},
        None,
    ),
    (
        "webhook over-long secret",
        "POST",
        "/v1/webhooks",
        {"url": "https://example.com/h", "events": ["task.failed"], "secret": "s" * 501},
        None,
    ),
    ("JSON body on artifact upload", "POST", "/v1/workspaces/w/artifacts", {"file": "x"}, None),
]

CREATED = {
    "id": TASK_ID,
    "workspaceId": "660e8400-e29b-41d4-a716-446655440001",
    "url": f"https://app.rebyte.ai/run/{TASK_ID}",
    "status": "running",
    "createdAt": "2026-02-09T10:30:00.000Z",
}

TASK = {
    "id": TASK_ID,
    "url": f"https://app.rebyte.ai/run/{TASK_ID}",
    "status": "completed",
    "title": "Security Analysis of Codebase",
    "executor": "opencode",
    "model": "lite",
    "createdAt": "2026-02-09T10:30:00.000Z",
    "completedAt": "2026-02-09T10:32:00.000Z",
    "prompts": [
        {
            "id": "uuid-1",
            "status": "succeeded",
            "submittedAt": "2026-02-09T10:30:01.000Z",
            "completedAt": "2026-02-09T10:32:00.000Z",
        }
    ],
}

SUMMARY = {
    key: TASK[key]
    for key in ("id", "url", "title", "executor", "model", "createdAt", "completedAt")
}

EVENT = {
    "seq": 0,
    "timestamp": "2026-02-09T10:30:02.000Z",
    "promptId": "uuid-1",
    "eventType": "tool_use",
    "payload": {"name": "bash"},
    "eventKey": "k-0",
}

DONE = {"status": "succeeded", "lastSeq": 0, "finalResult": "All good."}

ERROR = {"error": {"code": "not_found", "message": "Task not found"}}

COMPUTER = {
    "id": "c-1",
    "name": "Agent Computer",
    "status": "provisioning",
    "sandboxId": None,
    "icon": None,
    "url": "https://app.rebyte.ai/computers/c-1",
    "provisionError": None,
    "createdAt": "2026-02-09T10:30:00.000Z",
    "updatedAt": "2026-02-09T10:30:00.000Z",
}

ARTIFACT = {
    "filename": "report.md",
    "size": 12,
    "contentType": "text/markdown",
    "updatedAt": "2026-02-09T10:30:00.000Z",
}

WEBHOOK = {
    "id": "wh-1",
    "url": "https://example.com/hook",
    "events": ["task.completed"],
    "description": None,
    "hasSecret": True,
    "isActive": True,
    "createdAt": "2026-02-09T10:30:00.000Z",
    "lastTriggeredAt": None,
    "failureCount": 0,
}

# Documented (or server-shapes) answers: (method, path, status, body).
DOC_RESPONSES = [
    (
        "POST",
        "/v1/files",
        201,
        {
            "id": "file-123",
            "filename": "data-550e.csv",
            "uploadUrl": "https://storage.googleapis.com/bucket/data-550e.csv?X-Goog-Signature=ab",
        },
    ),
    ("POST", "/v1/tasks", 201, CREATED),
    ("GET", "/v1/tasks?limit=10", 200, {"data": [SUMMARY], "total": 1, "limit": 10, "offset": 0}),
    ("GET", "/v1/tasks", 200, {"data": [], "total": 0, "limit": 50, "offset": 0}),
    ("GET", f"/v1/tasks/{TASK_ID}", 200, TASK),
    (
        "GET",
        f"/v1/tasks/{TASK_ID}",
        200,
        {
            **TASK,
            "status": "running",
            "title": None,
            "completedAt": None,
            "finalResult": None,
            "prompts": [{**TASK["prompts"][0], "status": "pending", "completedAt": None}],
        },
    ),
    ("GET", f"/v1/tasks/{TASK_ID}", 200, {**TASK, "finalResult": ""}),
    ("POST", f"/v1/tasks/{TASK_ID}/prompts", 201, {"promptId": "uuid-2"}),
    (
        "PATCH",
        f"/v1/tasks/{TASK_ID}/visibility",
        200,
        {"visibility": "public", "shareUrl": f"https://app.rebyte.ai/share/{TASK_ID}"},
    ),
    ("PATCH", f"/v1/tasks/{TASK_ID}/visibility", 200, {"visibility": "shared"}),
    ("DELETE", f"/v1/tasks/{TASK_ID}", 204, None),
    ("POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {"id": TASK_ID, "status": "canceled"}),
    ("POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {}),
    ("POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {"ok": True}),
    ("POST", f"/v1/tasks/{TASK_ID}/cancel", 204, None),
    (
        "GET",
        f"/v1/tasks/{TASK_ID}/content",
        200,
        {
            "id": TASK_ID,
            "prompts": [
                {
                    "status": "succeeded",
                    "userPrompt": "Hi",
                    "response": None,
                    "submittedAt": "2026-02-09T10:30:01Z",
                    "completedAt": "2026-02-09T10:30:01Z",
                }
            ],
        },
    ),
    (
        "GET",
        f"/v1/tasks/{TASK_ID}/content?include=events",
        200,
        {
            "id": TASK_ID,
            "prompts": [
                {
                    "id": "uuid-1",
                    "status": "succeeded",
                    "userPrompt": "Check it",
                    "response": "All good.",
                    "submittedAt": "2026-02-09T10:30:01Z",
                    "completedAt": "2026-02-09T10:32:00Z",
                    "events": [EVENT],
                }
            ],
        },
    ),
    ("GET", f"/v1/tasks/{TASK_ID}", 404, ERROR),
    ("POST", "/v1/tasks", 400, {"error": {"code": "validation_error", "message": "prompt"}}),
    ("POST", "/v1/tasks", 400, {"error": {"code": "limit_exceeded", "message": "quota"}}),
    ("GET", "/v1/tasks", 401, {"error": {"code": "unauthorized", "message": "bad key"}}),
    ("GET", "/v1/tasks", 403, {"error": {"code": "insufficient_scopes", "message": "tasks:read"}}),
    ("POST", "/v1/tasks", 413, {"error": {"code": "payload_too_large", "message": "big"}}),
    ("GET", "/v1/tasks", 500, {"error": {"code": "internal_error", "message": "oops"}}),
    ("GET", "/v1/tasks", 502, "<html><body>Bad Gateway</body></html>"),
    (
        "PUT",
        f"/v1/tasks/{TASK_ID}",
        405,
        {"error": {"code": "method_not_allowed", "message": "no"}},
    ),
    ("GET", "/v1/nowhere", 404, {"error": {"code": "not_found", "message": "no route"}}),
    ("POST", "/v1/agent-computers", 201, COMPUTER),
    ("GET", "/v1/agent-computers/c-1", 200, {**COMPUTER, "status": "ready", "sandboxId": "s"}),
    (
        "GET",
        "/v1/agent-computers/c-1",
        200,
        {**COMPUTER, "status": "error", "provisionError": "no capacity"},
    ),
    ("GET", "/v1/agent-computers", 200, {"data": [COMPUTER], "total": 1, "limit": 50, "offset": 0}),
    ("GET", "/v1/agent-computers", 200, {"data": []}),
    ("DELETE", "/v1/agent-computers/c-1", 204, None),
    ("GET", "/v1/workspaces/w-1/artifacts", 200, {"data": [ARTIFACT]}),
    ("GET", "/v1/workspaces/w-1/artifacts", 200, {"artifacts": [{"name": "a.pdf"}]}),
    ("GET", "/v1/workspaces/w-1/artifacts", 200, [ARTIFACT]),
    ("GET", "/v1/workspaces/w-1/artifacts/report.md", 200, b"\x00\xff binary"),
    ("DELETE", "/v1/workspaces/w-1/artifacts/report.md", 204, None),
    ("DELETE", "/v1/workspaces/w-1/artifacts", 204, None),
    ("POST", "/v1/workspaces/w-1/artifacts", 201, {"data": [ARTIFACT]}),
    ("POST", "/v1/workspaces/w-1/artifacts", 201, {"artifacts": [ARTIFACT]}),
    ("POST", "/v1/workspaces/w-1/artifacts", 201, [ARTIFACT]),
    (
        "POST",
        "/v1/workspaces/w-1/artifacts/upload-url",
        201,
        {"url": "https://storage.example.com/b/big.bin?sig=1", "filename": "big.bin"},
    ),
    (
        "POST",
        "/v1/workspaces/w-1/artifacts/upload-url",
        201,
        {
            "uploadUrl": "https://storage.example.com/b/big.bin?sig=1",
            "filename": "big.bin",
            "expiresAt": "2026-02-09T11:30:00Z",
        },
    ),
    ("POST", "/v1/webhooks", 201, WEBHOOK),
    ("POST", "/v1/webhooks", 200, WEBHOOK),
    (
        "POST",
        "/v1/webhooks",
        400,
        {"error": {"code": "limit_exceeded", "message": "at most 3 webhooks per organization"}},
    ),
    ("GET", "/v1/webhooks", 200, {"data": [WEBHOOK]}),
    ("GET", "/v1/webhooks", 200, {"webhooks": []}),
    ("GET", "/v1/webhooks/wh-1", 200, WEBHOOK),
    ("DELETE", "/v1/webhooks/wh-1", 204, None),
    (
        "GET",
        "/v1/webhooks/public_key",
        200,
        {"publicKey": "-----BEGIN PUBLIC KEY-----", "algorithm": "ed25519"},
    ),
    ("GET", "/v1/webhooks/public_key", 200, {"key": "-----BEGIN PUBLIC KEY-----"}),
]


def _without(body: dict, key: str) -> dict:
    body = copy.deepcopy(body)
    del body[key]
    return body


BAD_RESPONSES = [
    ("task missing id", "GET", f"/v1/tasks/{TASK_ID}", 200, _without(TASK, "id")),
    ("task missing prompts", "GET", f"/v1/tasks/{TASK_ID}", 200, _without(TASK, "prompts")),
    ("bad task status", "GET", f"/v1/tasks/{TASK_ID}", 200, {**TASK, "status": "done"}),
    (
        "bad prompt status",
        "GET",
        f"/v1/tasks/{TASK_ID}",
        200,
        {**TASK, "prompts": [{**TASK["prompts"][0], "status": "completed"}]},
    ),
    (
        "createdAt not a timestamp",
        "GET",
        f"/v1/tasks/{TASK_ID}",
        200,
        {**TASK, "createdAt": "yesterday"},
    ),
    ("created without workspaceId", "POST", "/v1/tasks", 201, _without(CREATED, "workspaceId")),
    ("list without data", "GET", "/v1/tasks", 200, {"total": 0, "limit": 50, "offset": 0}),
    (
        "list data not a list",
        "GET",
        "/v1/tasks",
        200,
        {"data": {}, "total": 0, "limit": 50, "offset": 0},
    ),
    (
        "list limit over 100",
        "GET",
        "/v1/tasks",
        200,
        {"data": [], "total": 0, "limit": 500, "offset": 0},
    ),
    (
        "summary without url",
        "GET",
        "/v1/tasks",
        200,
        {"data": [_without(SUMMARY, "url")], "total": 1, "limit": 50, "offset": 0},
    ),
    (
        "public without shareUrl",
        "PATCH",
        f"/v1/tasks/{TASK_ID}/visibility",
        200,
        {"visibility": "public"},
    ),
    ("follow-up without promptId", "POST", f"/v1/tasks/{TASK_ID}/prompts", 201, {"id": "p"}),
    ("file slot without uploadUrl", "POST", "/v1/files", 201, {"id": "f", "filename": "a"}),
    ("error without message", "GET", f"/v1/tasks/{TASK_ID}", 404, {"error": {"code": "x"}}),
    ("error as a string", "GET", f"/v1/tasks/{TASK_ID}", 404, {"error": "not found"}),
    ("body on 204", "DELETE", f"/v1/tasks/{TASK_ID}", 204, {"ok": True}),
    ("undocumented status", "GET", f"/v1/tasks/{TASK_ID}", 418, ERROR),
    ("wrong success status", "POST", "/v1/tasks", 200, CREATED),
    ("HTML on a 404", "GET", f"/v1/tasks/{TASK_ID}", 404, "<html>Not Found</html>"),
    (
        "computer bad status",
        "GET",
        "/v1/agent-computers/c-1",
        200,
        {**COMPUTER, "status": "booting"},
    ),
    (
        "computer without sandboxId",
        "GET",
        "/v1/agent-computers/c-1",
        200,
        _without(COMPUTER, "sandboxId"),
    ),
    ("computer create as 200", "POST", "/v1/agent-computers", 200, COMPUTER),
    ("artifact without a name", "GET", "/v1/workspaces/w/artifacts", 200, {"data": [{"size": 1}]}),
    (
        "artifacts in an unknown wrapper",
        "GET",
        "/v1/workspaces/w/artifacts",
        200,
        {"files": [ARTIFACT]},
    ),
    (
        "upload-url without uploadUrl",
        "POST",
        "/v1/workspaces/w/artifacts/upload-url",
        201,
        {"filename": "a"},
    ),
    (
        "webhook returns its secret",
        "GET",
        "/v1/webhooks/wh-1",
        200,
        {**WEBHOOK, "secret": "s3cret"},
    ),
    (
        "webhook unknown event",
        "GET",
        "/v1/webhooks/wh-1",
        200,
        {**WEBHOOK, "events": ["task.deleted"]},
    ),
    ("webhooks in an unknown wrapper", "GET", "/v1/webhooks", 200, {"items": [WEBHOOK]}),
    ("cancel in an unknown shape", "POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {"canceled": True}),
    ("cancel ok false", "POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {"ok": False}),
    (
        "upload result in an unknown wrapper",
        "POST",
        "/v1/workspaces/w/artifacts",
        201,
        {"files": [ARTIFACT]},
    ),
    ("public key without a key", "GET", "/v1/webhooks/public_key", 200, {"algorithm": "ed25519"}),
]


def _schema_nodes(node, pointer=""):
    """Every (pointer, dict) in the spec, to check properties across it."""
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            yield from _schema_nodes(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schema_nodes(value, f"{pointer}/{index}")


def test_spec_is_valid_openapi():
    validate_spec(copy.deepcopy(spec()))


def test_every_documented_endpoint_is_present():
    assert sorted(operations()) == sorted(DOCUMENTED)


def test_server_and_api_key_header():
    assert spec()["servers"][0]["url"] == "https://api.rebyte.ai/v1"
    scheme = spec()["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "API_KEY")
    assert spec()["security"] == [{"apiKey": []}]


def test_every_operation_documents_its_errors():
    for method, template in operations():
        op = spec()["paths"][template][method.lower()]
        assert op.get("summary"), (method, template)
        codes = set(op["responses"])
        assert {"401", "403", "429", "5XX"} <= codes, (method, template, codes)
        if "{id}" in template:
            assert "404" in codes, (method, template)
        if "requestBody" in op:
            assert {"400", "413"} <= codes, (method, template)
    rate_limited = spec()["components"]["responses"]["RateLimited"]
    assert "Retry-After" in rate_limited["headers"]


def test_request_schemas_are_closed():
    """Strict about what a client sends: no object in a request takes unknown keys."""
    schemas = spec()["components"]["schemas"]
    for name in (
        "FileSlotRequest",
        "CreateTaskRequest",
        "FollowUpRequest",
        "VisibilityRequest",
        "FileRef",
        "CreateComputerRequest",
        "ArtifactUploadUrlRequest",
        "CreateWebhookRequest",
    ):
        assert schemas[name].get("additionalProperties") is False, name


def test_every_ref_resolves():
    for pointer, node in _schema_nodes(spec()):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = spec()
            for token in ref[2:].split("/"):
                assert token in target, f"{pointer}: dangling $ref {ref}"
                target = target[token]


@pytest.mark.parametrize("method,path,body", DOC_REQUESTS)
def test_documented_requests_are_accepted(method, path, body):
    validate_request(method, path, body)


@pytest.mark.parametrize(
    "path,query",
    [
        ("/v1/tasks", None),
        ("/v1/tasks?limit=10", None),
        ("/tasks", {"limit": 1, "offset": 0}),
        ("/tasks", {"limit": "100", "offset": "250"}),
        (f"/v1/tasks/{TASK_ID}", None),
        (f"/v1/tasks/{TASK_ID}/content", {"include": "events"}),
        (f"/v1/tasks/{TASK_ID}/events", None),
    ],
)
def test_documented_reads_are_accepted(path, query):
    validate_request("GET", path, query=query)


def test_requests_without_body_are_accepted():
    validate_request("DELETE", f"/v1/tasks/{TASK_ID}")
    validate_request("POST", f"/v1/tasks/{TASK_ID}/cancel")


def test_multipart_upload_request_is_accepted():
    validate_request(
        "POST", "/v1/workspaces/w-1/artifacts", {"file": [b"x"]}, content_type="multipart/form-data"
    )
    with pytest.raises(AssertionError):
        validate_request(
            "POST",
            "/v1/workspaces/w-1/artifacts",
            {"upload": [b"x"]},
            content_type="multipart/form-data",
        )


def test_redirect_needs_location_when_headers_are_checked():
    path = "/v1/workspaces/w-1/artifacts/a.bin"
    validate_response(
        "GET", path, 302, None, headers={"Location": "http://127.0.0.2:9/artifacts/w-1/a.bin?sig=1"}
    )
    with pytest.raises(AssertionError):
        validate_response("GET", path, 302, None, headers={})


def test_prompt_limit_is_inclusive():
    validate_request("POST", "/v1/tasks", {"prompt": "x" * 100_000})
    validate_request("POST", "/v1/files", {"filename": "a" * 255, "contentType": "text/csv"})


@pytest.mark.parametrize(
    "why,method,path,body,query", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_requests_are_rejected(why, method, path, body, query):
    with pytest.raises(AssertionError):
        validate_request(method, path, body, query)


@pytest.mark.parametrize("method,path,status,body", DOC_RESPONSES)
def test_documented_responses_are_accepted(method, path, status, body):
    validate_response(method, path, status, body)


def test_unknown_response_fields_are_allowed():
    validate_response(
        "GET",
        f"/v1/tasks/{TASK_ID}",
        200,
        {
            **TASK,
            "cost": {"credits": 3},
            "workspaceId": "w-1",
            "visibility": "shared",
            "prompts": [{**TASK["prompts"][0], "tokens": 12}],
        },
    )
    validate_response("POST", "/v1/tasks", 201, {**CREATED, "region": "us"})
    validate_response(
        "GET",
        "/v1/tasks",
        200,
        {
            "data": [{**SUMMARY, "status": "completed", "tags": []}],
            "total": 1,
            "limit": 50,
            "offset": 0,
            "hasMore": False,
        },
    )
    validate_response(
        "GET",
        f"/v1/tasks/{TASK_ID}",
        404,
        {"error": {"code": "not_found", "message": "m", "details": {}}},
    )


@pytest.mark.parametrize(
    "why,method,path,status,body", BAD_RESPONSES, ids=[case[0] for case in BAD_RESPONSES]
)
def test_wrong_responses_are_rejected(why, method, path, status, body):
    with pytest.raises(AssertionError):
        validate_response(method, path, status, body)


def test_rate_limit_needs_retry_after_when_headers_are_checked():
    error = {"error": {"code": "rate_limited", "message": "slow down"}}
    validate_response("POST", "/v1/tasks", 429, error, headers={"Retry-After": "2"})
    validate_response("POST", "/v1/tasks", 429, error, headers={"retry-after": "2"})
    with pytest.raises(AssertionError):
        validate_response("POST", "/v1/tasks", 429, error, headers={"X-Request-Id": "req_1"})


def test_event_stream_messages():
    stream = (
        ": keep-alive\n\n"
        "event: event\n"
        'data: {"seq": 0, "timestamp": "2026-02-09T10:30:02.000Z", "promptId": "uuid-1",\n'
        'data:  "eventType": "init", "payload": {}}\n\n'
        "event: done\r\n"
        'data: {"status": "succeeded", "lastSeq": 0, "finalResult": "All good."}\r\n\r\n'
    )
    assert [name for name, _ in parse_sse(stream)] == ["event", "done"]
    parsed = validate_sse(stream)
    assert parsed[0][1]["eventType"] == "init"
    assert parsed[1][1]["finalResult"] == "All good."
    validate_response(
        "GET",
        f"/v1/tasks/{TASK_ID}/events",
        200,
        stream,
        content_type="text/event-stream; charset=utf-8",
    )


def test_event_and_done_components():
    validate_component("TaskEvent", EVENT)
    validate_component("TaskEvent", _without(EVENT, "eventKey"))
    validate_component("TaskEventDone", DONE)
    validate_component("TaskEventDone", {"status": "running", "lastSeq": -1, "finalResult": None})
    validate_component("TaskEventDone", {"status": "pending", "lastSeq": -1, "finalResult": None})
    validate_component("TaskEventDone", {"status": "succeeded", "lastSeq": -1, "finalResult": ""})
    validate_component("TaskEventDone", {"status": "completed", "lastSeq": 3, "finalResult": "x"})
    for bad in (
        {**EVENT, "eventType": "shout"},
        _without(EVENT, "promptId"),
        {**EVENT, "seq": "0"},
    ):
        with pytest.raises(AssertionError):
            validate_component("TaskEvent", bad)
    for bad in (_without(DONE, "lastSeq"), {**DONE, "lastSeq": -2}, {**DONE, "status": "ok"}):
        with pytest.raises(AssertionError):
            validate_component("TaskEventDone", bad)


@pytest.mark.parametrize(
    "stream",
    [
        "event: progress\ndata: {}\n\n",
        "event: event\ndata: not json\n\n",
        'event: done\ndata: {"status": "succeeded"}\n\n',
    ],
)
def test_bad_event_streams_are_rejected(stream):
    with pytest.raises(AssertionError):
        validate_sse(stream)


# ---- where each field comes from, and what only a local-server knob sends -------------------

SOURCES = {"seed", "reference", "rebyte-apps", "local"}


def _properties(node, pointer=""):
    """(pointer, name, schema) of every property declared anywhere in the spec."""
    for where, item in _schema_nodes(node, pointer):
        properties = item.get("properties")
        if isinstance(properties, dict) and where.rsplit("/", 1)[-1] not in ("if", "then"):
            for name, schema in properties.items():
                if isinstance(schema, dict):
                    yield f"{where}/properties/{name}", name, schema


def test_every_field_says_where_the_documents_show_it():
    fields = list(_properties(spec()["components"]))
    fields += list(_properties(spec()["paths"], "/paths"))
    assert len(fields) > 100
    missing = [where for where, _, schema in fields if schema.get("x-source") not in SOURCES]
    assert not missing, f"fields without an x-source of {sorted(SOURCES)}: {missing}"


def test_every_operation_says_where_the_documents_show_it():
    for method, template in operations():
        op = spec()["paths"][template][method.lower()]
        assert op.get("x-source") in SOURCES, (method, template)
    seed = {
        (method, template)
        for method, template in operations()
        if spec()["paths"][template][method.lower()]["x-source"] == "seed"
    }
    assert seed == set(DOCUMENTED[:7])  # the seven endpoints of the seed pages


def test_the_seed_fields_are_marked_seed():
    schemas = spec()["components"]["schemas"]
    for name, fields in [
        ("TaskCreated", CREATED),
        ("Task", _without(TASK, "prompts")),
        ("Prompt", TASK["prompts"][0]),
        ("FileSlot", DOC_RESPONSES[0][3]),
    ]:
        for field in fields:
            assert schemas[name]["properties"][field]["x-source"] == "seed", (name, field)
    assert schemas["Task"]["properties"]["finalResult"]["x-source"] == "reference"


def test_documented_task_shapes_list_no_extras():
    schemas = spec()["components"]["schemas"]
    assert set(schemas["Task"]["properties"]) == {
        "id",
        "url",
        "status",
        "title",
        "executor",
        "model",
        "createdAt",
        "completedAt",
        "prompts",
        "finalResult",
    }
    assert set(schemas["TaskSummary"]["properties"]) == set(SUMMARY)
    for name, target, knob in [
        ("TaskViewKnobExtras", "Task", "task_view_extras"),
        ("TaskSummaryWorkspaceKnob", "TaskSummary", "task_view_extras"),
        ("TaskSummaryStatusKnob", "TaskSummary", "list_status"),
    ]:
        assert schemas[name]["x-adds-to"] == [target]
        assert schemas[name]["x-knob"] == {knob: True}
        assert "knob" in schemas[name]["description"]


def test_knob_markers_name_a_value_and_are_described():
    marked = [(where, node) for where, node in _schema_nodes(spec()) if "x-knob" in node]
    assert len(marked) >= 15
    for where, node in marked:
        assert isinstance(node["x-knob"], dict) and node["x-knob"], where
    assert {
        "task_view_extras",
        "list_status",
        "done_status_words",
        "cancel_answer",
        "artifact_upload_wrapper",
        "upload_url_field",
        "public_key_field",
        "webhook_dedupe",
        "unknown_field",
        "artifacts_wrapper",
        "artifact_name_field",
        "webhooks_wrapper",
    } == knob_names()


LIST = {"data": [SUMMARY], "total": 1, "limit": 50, "offset": 0}

# (method, path, status, body, knobs that make it valid in strict mode)
STRICT_CASES = [
    (
        "GET",
        f"/v1/tasks/{TASK_ID}",
        200,
        {**TASK, "workspaceId": "w-1"},
        {"task_view_extras": True},
    ),
    (
        "GET",
        f"/v1/tasks/{TASK_ID}",
        200,
        {**TASK, "visibility": "shared"},
        {"task_view_extras": True},
    ),
    (
        "GET",
        "/v1/tasks",
        200,
        {**LIST, "data": [{**SUMMARY, "status": "completed"}]},
        {"list_status": True},
    ),
    (
        "GET",
        "/v1/tasks",
        200,
        {**LIST, "data": [{**SUMMARY, "workspaceId": "w"}]},
        {"task_view_extras": True},
    ),
    ("POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {}, {"cancel_answer": "empty"}),
    ("POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {"ok": True}, {"cancel_answer": "ok"}),
    ("POST", f"/v1/tasks/{TASK_ID}/cancel", 204, None, {"cancel_answer": "204"}),
    ("POST", "/v1/webhooks", 200, WEBHOOK, {"webhook_dedupe": True}),
    ("GET", "/v1/webhooks", 200, {"webhooks": [WEBHOOK]}, {"webhooks_wrapper": "webhooks"}),
    (
        "GET",
        "/v1/workspaces/w/artifacts",
        200,
        {"artifacts": [ARTIFACT]},
        {"artifacts_wrapper": "artifacts"},
    ),
    ("GET", "/v1/workspaces/w/artifacts", 200, [ARTIFACT], {"artifacts_wrapper": "bare"}),
    (
        "GET",
        "/v1/workspaces/w/artifacts",
        200,
        {"data": [{"name": "a", "size": 1}]},
        {"artifact_name_field": "name"},
    ),
    ("POST", "/v1/workspaces/w/artifacts", 201, [ARTIFACT], {"artifact_upload_wrapper": "bare"}),
    (
        "POST",
        "/v1/workspaces/w/artifacts/upload-url",
        201,
        {"url": "https://s.example/u", "filename": "b"},
        {"upload_url_field": "url"},
    ),
    (
        "GET",
        "/v1/webhooks/public_key",
        200,
        {"key": "PEM", "algorithm": "ed25519"},
        {"public_key_field": "key"},
    ),
    (
        "GET",
        f"/v1/tasks/{TASK_ID}",
        200,
        {**TASK, "x_unknown": 1, "prompts": [{**TASK["prompts"][0], "x_unknown": 1}]},
        {"unknown_field": True},
    ),
    (
        "GET",
        f"/v1/tasks/{TASK_ID}/events",
        200,
        'event: done\ndata: {"status": "completed", "lastSeq": 0, "finalResult": "x"}\n\n',
        {"done_status_words": "task"},
    ),
]


@pytest.mark.parametrize("method,path,status,body,knobs", STRICT_CASES)
def test_strict_mode_refuses_knob_only_shapes_on_default_knobs(method, path, status, body, knobs):
    validate_response(method, path, status, body)  # a client must tolerate it
    with pytest.raises(AssertionError, match="strictly"):
        validate_response(method, path, status, body, strict=True, knobs={})
    validate_response(method, path, status, body, strict=True, knobs=knobs)


@pytest.mark.parametrize(
    "method,path,status,body",
    [
        ("POST", "/v1/tasks", 201, CREATED),
        ("GET", f"/v1/tasks/{TASK_ID}", 200, {**TASK, "finalResult": None}),
        ("GET", "/v1/tasks", 200, LIST),
        ("POST", f"/v1/tasks/{TASK_ID}/cancel", 200, {"id": TASK_ID, "status": "canceled"}),
        ("GET", "/v1/workspaces/w/artifacts", 200, {"data": [ARTIFACT]}),
        ("POST", "/v1/webhooks", 201, WEBHOOK),
        ("GET", "/v1/webhooks/public_key", 200, {"publicKey": "PEM", "algorithm": "ed25519"}),
        ("GET", f"/v1/tasks/{TASK_ID}", 404, ERROR),
    ],
)
def test_strict_mode_takes_the_default_shapes(method, path, status, body):
    validate_response(method, path, status, body, strict=True, knobs={})


def test_strict_mode_refuses_unlisted_fields_at_any_depth():
    cases = [
        ("GET", f"/v1/tasks/{TASK_ID}", 200, {**TASK, "cost": 1}),
        (
            "GET",
            f"/v1/tasks/{TASK_ID}",
            200,
            {**TASK, "prompts": [{**TASK["prompts"][0], "tokens": 1}]},
        ),
        ("GET", "/v1/tasks", 200, {**LIST, "hasMore": False}),
        (
            "GET",
            f"/v1/tasks/{TASK_ID}",
            404,
            {"error": {"code": "not_found", "message": "m", "details": {}}},
        ),
        (
            "GET",
            f"/v1/tasks/{TASK_ID}/content",
            200,
            {
                "id": TASK_ID,
                "prompts": [
                    {
                        "id": "p",
                        "status": "succeeded",
                        "userPrompt": "u",
                        "response": None,
                        "submittedAt": "2026-02-09T10:30:01Z",
                        "completedAt": None,
                        "extra": 1,
                    }
                ],
            },
        ),
        (
            "GET",
            f"/v1/tasks/{TASK_ID}/events",
            200,
            "event: event\ndata: " + json.dumps({**EVENT, "agent": "sub"}) + "\n\n",
        ),
        ("GET", f"/v1/tasks/{TASK_ID}", 200, {**TASK, "x_unknown": 1}),
    ]
    for method, path, status, body in cases:
        validate_response(method, path, status, body)
        with pytest.raises(AssertionError, match="strictly"):
            validate_response(
                method, path, status, body, strict=True, knobs={"unknown_field": False}
            )
    # The event payload is free-form: its fields depend on eventType.
    validate_sse(
        "event: event\ndata: " + json.dumps({**EVENT, "payload": {"any": 1}}) + "\n\n", strict=True
    )


@pytest.mark.parametrize(
    "knobs", [{}, {"task_view_extras": True, "cancel_answer": "204", "unknown_field": True}]
)
def test_the_strict_view_of_the_spec_is_valid_openapi_too(knobs):
    from openapi_check import _knob_key, _strict_spec

    strict = _strict_spec(_knob_key(knobs))
    validate_spec(copy.deepcopy(strict))
    assert strict["components"]["schemas"]["Task"]["unevaluatedProperties"] is False
    assert ("workspaceId" in strict["components"]["schemas"]["Task"]["properties"]) == bool(knobs)
