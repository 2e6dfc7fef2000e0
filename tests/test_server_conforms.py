"""The local server answers as references/openapi.yaml says.

Driven with plain `requests`, not the project's client, so that the server
is checked against the spec alone: every answer goes through
validate_response, every request we send through validate_request (a
malformed request of ours would prove nothing). Where the docs are silent the
expectations come from tests/server-shapes.md.

Every answer is checked twice: tolerantly (as a client reads it) and strictly
(strict=True with the server's current knob values: no field the spec does not
list for that answer, at any depth, and nothing the spec marks x-knob unless
that knob is on).
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
import requests
from openapi_check import (
    knob_names,
    operations,
    spec,
    template_of,
    validate_request,
    validate_response,
    validate_sse,
)

TIMEOUT = 30
WAIT = 60  # seconds to let a prompt finish on the local server


class Api:
    """Plain HTTP against the local server; every answer is checked against the spec."""

    def __init__(self, server, key: str):
        self.server = server
        self.key = key
        self.seen: set = set()  # (method, spec template, status) of every answer

    def knobs(self) -> dict:
        """The server's current values of the knobs the spec's x-knob markers name."""
        return {name: getattr(self.server, name) for name in knob_names()}

    def call(
        self,
        method: str,
        path: str,
        *,
        body=None,
        params=None,
        key=None,
        raw: bytes | None = None,
        check_request: bool = True,
        **kwargs,
    ):
        """Send one request to base_url + path; returns (response, parsed body)."""
        if check_request:
            validate_request(method, path, body, params)
        key = self.key if key is None else key
        headers = {"API_KEY": key} if key else {}  # key="": send none
        headers.update(kwargs.pop("headers", {}))
        if raw is not None:
            headers.setdefault("Content-Type", "application/json")
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        response = requests.request(
            method,
            self.server.base_url + path,
            params=params,
            headers=headers,
            timeout=TIMEOUT,
            **kwargs,
        )
        parsed = _body(response)
        spec_path = urlsplit(response.url).path
        query = urlsplit(response.url).query
        for strict in (False, True):
            validate_response(
                method,
                spec_path + (f"?{query}" if query else ""),
                response.status_code,
                parsed,
                headers=dict(response.headers),
                content_type=response.headers.get("Content-Type") if parsed else None,
                strict=strict,
                knobs=self.knobs(),
            )
        self.seen.add((method.upper(), _template(spec_path), response.status_code))
        assert re.fullmatch(r"req_[0-9a-f]+", response.headers.get("X-Request-Id", "")), (
            f"{method} {path}: X-Request-Id missing or malformed: "
            f"{response.headers.get('X-Request-Id')!r}"
        )
        return response, parsed

    def error(self, method: str, path: str, status: int, code: str | None = None, **kwargs):
        """Expect an error answer with this status (and error code, when given)."""
        kwargs.setdefault("check_request", False)
        response, parsed = self.call(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, parsed)
        if code is not None:
            assert parsed["error"]["code"] == code, parsed
        return parsed

    def wait_prompt(self, task_id: str, prompt_id: str | None = None) -> dict:
        """Poll GET /tasks/{id} until the given (or latest) prompt is terminal."""
        deadline = time.monotonic() + WAIT
        while True:
            _, task = self.call("GET", f"/tasks/{task_id}")
            prompts = task["prompts"]
            wanted = [p for p in prompts if p["id"] == prompt_id] if prompt_id else prompts[-1:]
            if wanted and wanted[0]["status"] in ("succeeded", "failed", "canceled"):
                return task
            assert time.monotonic() < deadline, f"prompt never finished: {task}"
            time.sleep(0.1)


def _template(path: str) -> str | None:
    try:
        return template_of(path)
    except AssertionError:
        return None  # no such path in the spec (a 404 on purpose)


def _body(response: requests.Response):
    """Parsed JSON, the text of a non-JSON body, or None when there is none."""
    if not response.content:
        return None
    if "json" in response.headers.get("Content-Type", ""):
        return response.json()
    return response.text


def _read_events(api: Api, task_id: str) -> str:
    """Read one events connection up to and including its `done` message."""
    validate_request("GET", f"/tasks/{task_id}/events")
    lines = []
    with requests.get(
        f"{api.server.base_url}/tasks/{task_id}/events",
        stream=True,
        headers={"API_KEY": api.key, "Accept": "text/event-stream"},
        timeout=TIMEOUT,
    ) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        seen_done = False
        for line in response.iter_lines(decode_unicode=True):
            lines.append(line)
            if line == "event: done":
                seen_done = True
            elif seen_done and line == "":
                break
    text = "\n".join(lines) + "\n"
    for strict in (False, True):
        validate_response(
            "GET",
            f"/v1/tasks/{task_id}/events",
            200,
            text,
            content_type=response.headers["Content-Type"],
            strict=strict,
            knobs=api.knobs(),
        )
    api.seen.add(("GET", "/tasks/{id}/events", 200))
    return text


@pytest.fixture
def api(fake_rebyte, api_key):
    return Api(fake_rebyte, api_key)


def test_full_lifecycle_conforms(api, fake_rebyte):
    # A file slot, then the upload to the storage listener, without the key.
    _, slot = api.call("POST", "/files", body={"filename": "data.csv", "contentType": "text/csv"})
    assert slot["filename"].endswith(".csv")
    assert urlsplit(slot["uploadUrl"]).netloc != urlsplit(fake_rebyte.base_url).netloc
    content = b"a,b\n1,2\n"
    upload = requests.put(
        slot["uploadUrl"], data=content, headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
    )
    assert 200 <= upload.status_code < 300, upload.text

    # Create, with the file, and read it back until it is done.
    request = {
        "prompt": "Summarize the CSV",
        "skills": ["data-analysis-workflow"],
        "files": [{"id": slot["id"], "filename": slot["filename"]}],
    }
    response, created = api.call("POST", "/tasks", body=request)
    assert response.status_code == 201
    assert created["status"] == "running"
    task_id = created["id"]
    task = api.wait_prompt(task_id)
    assert task["status"] == "completed", task
    assert task["completedAt"] is not None
    assert "visibility" not in task and "workspaceId" not in task
    assert isinstance(task["finalResult"], str)

    # List: the new task first; paging echoes limit and offset.
    _, listing = api.call("GET", "/tasks")
    assert listing["data"][0]["id"] == task_id
    assert (listing["limit"], listing["offset"]) == (50, 0)
    assert "status" not in listing["data"][0]
    _, page = api.call("GET", "/tasks", params={"limit": "1", "offset": "0"})
    assert len(page["data"]) == 1 and page["limit"] == 1 and page["total"] >= 1

    # A follow-up: wait on its promptId.
    response, follow = api.call(
        "POST", f"/tasks/{task_id}/prompts", body={"prompt": "Now chart it", "skills": ["xlsx"]}
    )
    assert response.status_code == 201
    task = api.wait_prompt(task_id, follow["promptId"])
    assert [p["id"] for p in task["prompts"]][-1] == follow["promptId"]
    assert task["status"] == "completed"

    # Visibility: a share link only when public.
    _, shared = api.call("PATCH", f"/tasks/{task_id}/visibility", body={"visibility": "public"})
    assert shared["visibility"] == "public" and shared["shareUrl"]
    _, private = api.call("PATCH", f"/tasks/{task_id}/visibility", body={"visibility": "private"})
    assert private["visibility"] == "private" and not private.get("shareUrl")
    fake_rebyte.configure(task_view_extras=True)
    try:
        _, task = api.call("GET", f"/tasks/{task_id}")
    finally:
        fake_rebyte.configure(task_view_extras=False)
    assert task["visibility"] == "private" and task["workspaceId"] == created["workspaceId"]

    # Cancel with nothing running: not an error, the status stays.
    response, canceled = api.call("POST", f"/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert (canceled["id"], canceled["status"]) == (task_id, "completed")

    # Content, with and without events.
    _, content_body = api.call("GET", f"/tasks/{task_id}/content")
    assert [p["userPrompt"] for p in content_body["prompts"]] == [
        "Summarize the CSV",
        "Now chart it",
    ]
    assert all("events" not in p for p in content_body["prompts"])
    assert all(isinstance(p["response"], str) for p in content_body["prompts"])
    _, with_events = api.call("GET", f"/tasks/{task_id}/content", params={"include": "events"})
    assert all(p["events"] for p in with_events["prompts"])

    # Events of the latest prompt, replayed from the start, ending in done.
    messages = validate_sse(_read_events(api, task_id))
    names = [name for name, _ in messages]
    assert names[-1] == "done" and set(names[:-1]) == {"event"}
    events = [data for name, data in messages if name == "event"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert {e["promptId"] for e in events} == {follow["promptId"]}
    done = messages[-1][1]
    assert done["lastSeq"] == events[-1]["seq"]
    assert done["finalResult"] == task["finalResult"]
    assert done["status"] == "succeeded"  # the prompt's word

    # Delete: 204 without a body, then gone.
    response, deleted = api.call("DELETE", f"/tasks/{task_id}")
    assert response.status_code == 204 and deleted is None
    api.error("GET", f"/tasks/{task_id}", 404, "not_found")
    api.error("DELETE", f"/tasks/{task_id}", 404, "not_found")
    _, listing = api.call("GET", "/tasks")
    assert task_id not in [t["id"] for t in listing["data"]]

    # The upload went to the storage listener, not to the API.
    puts = [e for e in fake_rebyte.request_log if e["method"] == "PUT"]
    assert [(e["listener"], e["status"]) for e in puts] == [("upload", upload.status_code)]


def test_cancel_during_a_prompt_conforms(api):
    _, created = api.call("POST", "/tasks", body={"prompt": "Take your time [duration=5]"})
    response, canceled = api.call("POST", f"/tasks/{created['id']}/cancel")
    assert response.status_code == 200
    assert (canceled["id"], canceled["status"]) == (created["id"], "canceled")
    _, task = api.call("GET", f"/tasks/{created['id']}")
    assert task["status"] == "canceled" and task["finalResult"] is None
    assert task["prompts"][-1]["status"] == "canceled"
    assert task["completedAt"] is not None
    done = validate_sse(_read_events(api, created["id"]))[-1]
    assert done[0] == "done" and done[1]["status"] == "canceled"


def test_error_answers_conform(api, fake_rebyte):
    missing = "00000000-0000-0000-0000-000000000000"
    api.error("GET", "/tasks", 401, "unauthorized", key="")
    api.error("GET", "/tasks", 401, "unauthorized", key="rbk_wrong")
    api.error("POST", "/tasks", 400, "validation_error", raw=b"{not json")
    api.error("POST", "/tasks", 400, "validation_error", body={"skills": ["pdf"]})
    api.error("POST", "/tasks", 400, "validation_error", body={"prompt": "x" * 100_001})
    api.error(
        "POST",
        "/tasks",
        400,
        "validation_error",
        body={"prompt": "p", "files": [{"filename": "a.csv"}]},
    )
    api.error(
        "POST",
        "/tasks",
        400,
        "validation_error",
        body={"prompt": "p", "files": [{"id": "nope", "filename": "nope.csv"}]},
    )
    api.error("POST", "/files", 400, "validation_error", body={"filename": "a" * 256})
    api.error("GET", "/tasks", 400, "validation_error", params={"limit": "0"})
    api.error("GET", "/tasks", 400, "validation_error", params={"limit": "ten"})
    api.error("GET", "/tasks", 400, "validation_error", params={"offset": "-1"})
    api.error("GET", f"/tasks/{missing}", 404, "not_found")
    api.error("POST", f"/tasks/{missing}/prompts", 404, "not_found", body={"prompt": "p"})
    api.error(
        "PATCH", f"/tasks/{missing}/visibility", 404, "not_found", body={"visibility": "public"}
    )
    api.error("POST", f"/tasks/{missing}/cancel", 404, "not_found")
    api.error("GET", f"/tasks/{missing}/content", 404, "not_found")
    api.error("GET", f"/tasks/{missing}/events", 404, "not_found")
    api.error("GET", "/nowhere", 404, "not_found")
    api.error("PUT", f"/tasks/{missing}", 405, "method_not_allowed")
    api.error("DELETE", "/tasks", 405, "method_not_allowed")

    _, created = api.call("POST", "/tasks", body={"prompt": "Hello"})
    api.error(
        "PATCH",
        f"/tasks/{created['id']}/visibility",
        400,
        "validation_error",
        body={"visibility": "secret"},
    )
    api.error("POST", f"/tasks/{created['id']}/prompts", 400, "validation_error", body={})
    # A file slot that was never uploaded cannot be attached.
    _, slot = api.call("POST", "/files", body={"filename": "empty.txt"})
    api.error(
        "POST",
        "/tasks",
        400,
        "validation_error",
        body={"prompt": "p", "files": [{"id": slot["id"], "filename": slot["filename"]}]},
    )


def test_limit_above_100_is_refused_or_clamped(api):
    response, body = api.call("GET", "/tasks", params={"limit": "101"}, check_request=False)
    assert response.status_code in (200, 400), body
    if response.status_code == 200:
        assert body["limit"] == 100
    else:
        assert body["error"]["code"] == "validation_error"


def test_every_operation_refuses_a_missing_key(api):
    """401 with the error body on every operation, whatever the body would have been."""
    for method, template in operations():
        path = template.replace("{id}", "00000000-0000-0000-0000-000000000000").replace(
            "{filename}", "report-1.md"
        )
        takes_body = "requestBody" in spec()["paths"][template][method.lower()]
        body = {"prompt": "p"} if takes_body else None
        api.error(method, path, 401, "unauthorized", key="", body=body)


def test_oversized_body_is_413(api):
    api.error("POST", "/tasks", 413, raw=b'{"prompt": "' + b"x" * (2 * 1024 * 1024) + b'"}')


@pytest.mark.parametrize(
    "fault,status",
    [
        ("429", 429),
        ("500", 500),
        ("502", 502),
        ("503", 503),
        ("502-html", 502),
        ("503-html", 503),
    ],
)
def test_injected_failures_conform(api, fake_rebyte, fault, status):
    """Rate limits and server errors: documented status, error body or proxy page, Retry-After."""
    fake_rebyte.inject("GET", r"/v1/tasks", fault)
    try:
        response, body = api.call("GET", "/tasks")
    finally:
        fake_rebyte.clear_faults()
    assert response.status_code == status
    if fault == "429":
        assert body["error"]["code"] == "rate_limited"
        assert response.headers["Retry-After"].isdigit()
    elif fault.endswith("-html"):
        assert response.headers["Content-Type"].startswith("text/html")
        assert isinstance(body, str)
    else:
        assert body["error"]["code"] == "internal_error"


def test_failed_prompt_and_question_conform(api):
    _, created = api.call("POST", "/tasks", body={"prompt": "Ask first [ask] then [fail]"})
    task = api.wait_prompt(created["id"])
    assert task["status"] == "failed" and task["finalResult"] is None
    assert task["prompts"][-1]["status"] == "failed"
    messages = validate_sse(_read_events(api, created["id"]))
    types = [data["eventType"] for name, data in messages if name == "event"]
    assert "ask_user_question" in types and types[-1] == "result"
    assert messages[-1][1]["status"] == "failed"
    _, content = api.call("GET", f"/tasks/{created['id']}/content", params={"include": "events"})
    assert content["prompts"][0]["response"] is None


def test_early_done_conforms(api, fake_rebyte):
    """The early, empty done (lastSeq -1) is still a valid done message."""
    fake_rebyte.configure(events_early_done=True)
    try:
        _, created = api.call("POST", "/tasks", body={"prompt": "Slow start [duration=5]"})
        messages = validate_sse(_read_events(api, created["id"]))
    finally:
        fake_rebyte.configure(events_early_done=False)
    assert messages == [("done", {"status": "pending", "lastSeq": -1, "finalResult": None})]
    api.call("POST", f"/tasks/{created['id']}/cancel")


def _wait_computer(api: Api, computer_id: str) -> dict:
    deadline = time.monotonic() + WAIT
    while True:
        _, computer = api.call("GET", f"/agent-computers/{computer_id}")
        if computer["status"] != "provisioning":
            return computer
        assert time.monotonic() < deadline, computer
        time.sleep(0.05)


def test_computers_conform(api, fake_rebyte):
    fake_rebyte.configure(computer_ready_delay=0.2)
    response, computer = api.call("POST", "/agent-computers", body={"name": "Box", "icon": "x"})
    assert response.status_code == 201 and computer["status"] == "provisioning"
    api.error(
        "POST",
        "/tasks",
        400,
        "validation_error",
        body={"prompt": "too early", "workspaceId": computer["id"]},
    )
    assert _wait_computer(api, computer["id"])["status"] == "ready"
    _, failing = api.call("POST", "/agent-computers", body={"name": "x [provision-error]"})
    assert _wait_computer(api, failing["id"])["status"] == "error"
    _, listed = api.call("GET", "/agent-computers", params={"limit": 1, "offset": 0})
    assert [item["id"] for item in listed["data"]] == [failing["id"]]
    assert listed["total"] == 2
    _, created = api.call(
        "POST", "/tasks", body={"prompt": "Inside", "workspaceId": computer["id"]}
    )
    assert created["workspaceId"] == computer["id"]
    response, _ = api.call("DELETE", f"/agent-computers/{failing['id']}")
    assert response.status_code == 204
    api.error("GET", f"/agent-computers/{failing['id']}", 404, "not_found")
    api.error("POST", "/agent-computers", 400, "validation_error", body={"name": "n" * 201})
    api.error("POST", "/agent-computers", 400, "validation_error", body={"icon": "i" * 51})
    api.error("GET", "/agent-computers", 400, "validation_error", params={"limit": "0"})


@pytest.mark.parametrize(
    "wrapper,name_field", [("data", "filename"), ("artifacts", "name"), ("bare", "filename")]
)
def test_artifact_lists_conform(api, fake_rebyte, wrapper, name_field):
    fake_rebyte.configure(artifacts_wrapper=wrapper, artifact_name_field=name_field)
    try:
        _, created = api.call("POST", "/tasks", body={"prompt": "Make files"})
        api.wait_prompt(created["id"])
        _, listed = api.call("GET", f"/workspaces/{created['workspaceId']}/artifacts")
    finally:
        fake_rebyte.configure(artifacts_wrapper="data", artifact_name_field="filename")
    entries = listed if wrapper == "bare" else listed[wrapper]
    assert sorted(entry[name_field] for entry in entries) == ["output-1.bin", "report-1.md"]


def test_artifact_transfers_conform(api, fake_rebyte):
    _, created = api.call("POST", "/tasks", body={"prompt": "Make files"})
    workspace = created["workspaceId"]
    api.wait_prompt(created["id"])
    base = f"/workspaces/{workspace}/artifacts"
    response, _ = api.call("GET", f"{base}/output-1.bin")
    assert response.content == fake_rebyte.artifact_bytes(workspace, "output-1.bin")
    assert response.headers["Content-Length"] == str(len(response.content))

    fake_rebyte.configure(artifact_download="redirect")
    try:
        response, _ = api.call("GET", f"{base}/report-1.md", allow_redirects=False)
    finally:
        fake_rebyte.configure(artifact_download="direct")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(fake_rebyte.upload_base_url + "/")

    validate_request("POST", f"/v1{base}", {"file": [b"x"]}, content_type="multipart/form-data")
    response, uploaded = api.call(
        "POST", base, check_request=False, files=[("file", ("notes.txt", b"hello"))]
    )
    assert response.status_code == 201
    assert [entry["filename"] for entry in uploaded["data"]] == ["notes.txt"]
    response, slot = api.call("POST", f"{base}/upload-url", body={"filename": "big.bin"})
    assert response.status_code == 201
    assert requests.put(slot["uploadUrl"], data=b"b" * 1000, timeout=TIMEOUT).status_code == 200
    assert fake_rebyte.artifact_bytes(workspace, "big.bin") == b"b" * 1000

    api.error(
        "POST",
        base,
        413,
        "payload_too_large",
        check_request=False,
        files=[("file", ("huge.bin", b"0" * (8 * 1024 * 1024 + 1)))],
    )
    api.error("POST", base, 400, "validation_error", body={"file": "x"})
    api.error("POST", f"{base}/upload-url", 400, "validation_error", body={})
    api.error("GET", f"{base}/missing.txt", 404, "not_found")
    api.error("GET", "/workspaces/no-such-workspace/artifacts", 404, "not_found")
    response, _ = api.call("DELETE", f"{base}/notes.txt")
    assert response.status_code == 204
    response, _ = api.call("DELETE", base)
    assert response.status_code == 204
    _, listed = api.call("GET", base)
    assert listed == {"data": []}


def test_webhooks_conform(api, fake_rebyte):
    hooks = []
    for number in range(3):
        response, hook = api.call(
            "POST",
            "/webhooks",
            body={
                "url": f"https://example.com/hook{number}",
                "events": ["task.completed"],
                "secret": "s3cret-value",
            },
        )
        assert response.status_code == 201 and hook["hasSecret"] is True
        hooks.append(hook)
    fake_rebyte.configure(webhook_dedupe=True)
    try:
        response, again = api.call(
            "POST",
            "/webhooks",
            body={"url": "https://example.com/hook0", "events": ["task.failed"]},
        )
    finally:
        fake_rebyte.configure(webhook_dedupe=False)
    assert response.status_code == 200 and again["id"] == hooks[0]["id"]
    api.error(
        "POST",
        "/webhooks",
        400,
        "limit_exceeded",
        body={"url": "https://example.com/hook0", "events": ["task.completed"]},
    )
    api.error(
        "POST",
        "/webhooks",
        400,
        "limit_exceeded",
        body={"url": "https://example.com/hook3", "events": ["task.completed"]},
    )
    api.error(
        "POST",
        "/webhooks",
        400,
        "validation_error",
        body={"url": "http://example.com/h", "events": ["task.completed"]},
    )
    _, listed = api.call("GET", "/webhooks")
    assert [hook["id"] for hook in listed["data"]] == [hook["id"] for hook in hooks]
    fake_rebyte.configure(webhooks_wrapper="webhooks")
    try:
        _, listed = api.call("GET", "/webhooks")
    finally:
        fake_rebyte.configure(webhooks_wrapper="data")
    assert len(listed["webhooks"]) == 3
    _, key = api.call("GET", "/webhooks/public_key")
    assert key["algorithm"] == "ed25519" and "BEGIN PUBLIC KEY" in key["publicKey"]
    _, one = api.call("GET", f"/webhooks/{hooks[1]['id']}")
    assert one == hooks[1]
    response, _ = api.call("DELETE", f"/webhooks/{hooks[1]['id']}")
    assert response.status_code == 204
    api.error("GET", f"/webhooks/{hooks[1]['id']}", 404, "not_found")


# ---- every endpoint, every field listed ----------------------------------------------------


def _objects(value):
    """Every JSON object inside a parsed value, nested ones included."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _sweep(api: Api, server) -> dict:
    """Call every operation of the spec once or more (each answer checked strictly by
    Api.call); returns the task views and list rows seen, for the callers to inspect."""
    views, rows = [], []

    def view(task_id: str) -> dict:
        _, task = api.call("GET", f"/tasks/{task_id}")
        views.append(task)
        return task

    def wait(task_id: str, prompt_id: str | None = None) -> dict:
        task = api.wait_prompt(task_id, prompt_id)
        views.append(task)
        return task

    # Files, and the upload to the storage host.
    _, slot = api.call("POST", "/files", body={"filename": "in.csv", "contentType": "text/csv"})
    assert (
        requests.put(
            slot["uploadUrl"], data=b"a\n", headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
        ).status_code
        == 200
    )
    # Tasks: create, read, list, follow up, visibility, cancel, content, events.
    _, created = api.call(
        "POST",
        "/tasks",
        body={"prompt": "Sweep [ask]", "files": [{"id": slot["id"], "filename": slot["filename"]}]},
    )
    view(created["id"])
    wait(created["id"])
    for params in (None, {"limit": "1", "offset": "0"}):
        _, listing = api.call("GET", "/tasks", params=params)
        rows += listing["data"]
    _, follow = api.call(
        "POST", f"/tasks/{created['id']}/prompts", body={"prompt": "Quick question [silent]"}
    )
    wait(created["id"], follow["promptId"])
    validate_sse(_read_events(api, created["id"]))
    api.call("GET", f"/tasks/{created['id']}/content")
    api.call("GET", f"/tasks/{created['id']}/content", params={"include": "events"})
    _, follow = api.call(
        "POST", f"/tasks/{created['id']}/prompts", body={"prompt": "Now chart it [fail]"}
    )
    wait(created["id"], follow["promptId"])
    validate_sse(_read_events(api, created["id"]))
    api.call("PATCH", f"/tasks/{created['id']}/visibility", body={"visibility": "public"})
    api.call("PATCH", f"/tasks/{created['id']}/visibility", body={"visibility": "shared"})
    _, slow = api.call("POST", "/tasks", body={"prompt": "Long [duration=5]"})
    view(slow["id"])
    api.call("POST", f"/tasks/{slow['id']}/cancel")
    view(slow["id"])
    validate_sse(_read_events(api, slow["id"]))
    api.call("POST", f"/tasks/{slow['id']}/cancel")  # nothing running: still fine
    _, listing = api.call("GET", "/tasks")
    rows += listing["data"]

    # Artifacts of the first task's workspace.
    base = f"/workspaces/{created['workspaceId']}/artifacts"
    api.call("GET", base)
    api.call("GET", f"{base}/report-1.md")
    validate_request("POST", f"/v1{base}", {"file": [b"x"]}, content_type="multipart/form-data")
    api.call("POST", base, check_request=False, files=[("file", ("notes.txt", b"hi"))])
    _, upload = api.call("POST", f"{base}/upload-url", body={"filename": "big.bin"})
    url = upload.get("uploadUrl") or upload["url"]
    assert requests.put(url, data=b"b" * 10, timeout=TIMEOUT).status_code == 200
    api.call("GET", f"{base}/big.bin")
    api.call("DELETE", f"{base}/notes.txt")
    api.call("DELETE", base)

    # Agent Computers.
    _, computer = api.call("POST", "/agent-computers", body={"name": "Sweep box"})
    api.call("POST", "/agent-computers")
    assert _wait_computer(api, computer["id"])["status"] == "ready"
    _, inside = api.call(
        "POST", "/tasks", body={"prompt": "In the box", "workspaceId": computer["id"]}
    )
    view(inside["id"])
    api.call("GET", "/agent-computers", params={"limit": "10"})
    api.call("DELETE", f"/agent-computers/{computer['id']}")

    # Webhooks (the same url twice: whatever the server does with it must conform).
    _, hook = api.call(
        "POST",
        "/webhooks",
        body={
            "url": "https://example.com/sweep",
            "events": ["task.completed"],
            "secret": "s3cret",
            "description": "d",
        },
    )
    api.call(
        "POST", "/webhooks", body={"url": "https://example.com/sweep", "events": ["task.failed"]}
    )
    api.call("GET", "/webhooks")
    api.call("GET", f"/webhooks/{hook['id']}")
    api.call("GET", "/webhooks/public_key")
    api.call("DELETE", f"/webhooks/{hook['id']}")

    # Errors.
    missing = "00000000-0000-0000-0000-000000000000"
    api.error("GET", "/tasks", 401, "unauthorized", key="")
    api.error("GET", f"/tasks/{missing}", 404, "not_found")
    api.error("POST", "/tasks", 400, "validation_error", body={"skills": ["pdf"]})
    api.error("DELETE", "/tasks", 405, "method_not_allowed")
    api.error("GET", "/nowhere", 404, "not_found")

    # Delete, last.
    for task in (created, slow, inside):
        api.call("DELETE", f"/tasks/{task['id']}")
    return {"views": views, "rows": rows}


def test_every_endpoint_answers_only_listed_fields_on_default_knobs(api, fake_rebyte):
    assert all(value == DEFAULT_KNOBS[name] for name, value in api.knobs().items()), api.knobs()
    seen = _sweep(api, fake_rebyte)
    answered = {
        (method, template)
        for method, template, status in api.seen
        if template is not None and 200 <= status < 400
    }
    assert answered == set(operations()), sorted(set(operations()) - answered)

    # The documented shapes exactly, with none of the local server's extras.
    assert len(seen["views"]) >= 6 and len(seen["rows"]) >= 3
    for task in seen["views"]:
        assert set(task) == TASK_VIEW_KEYS, sorted(task)
        assert all(
            set(p) == {"id", "status", "submittedAt", "completedAt"} for p in task["prompts"]
        )
    for row in seen["rows"]:
        assert set(row) == LIST_ROW_KEYS, sorted(row)
    assert not any("x_unknown" in item for item in _objects(seen))


DEFAULT_KNOBS = {
    "task_view_extras": False,
    "list_status": False,
    "done_status_words": "prompt",
    "cancel_answer": "status",
    "artifact_upload_wrapper": "data",
    "upload_url_field": "uploadUrl",
    "public_key_field": "publicKey",
    "webhook_dedupe": False,
    "unknown_field": False,
    "artifacts_wrapper": "data",
    "artifact_name_field": "filename",
    "webhooks_wrapper": "data",
}
TASK_VIEW_KEYS = {
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
LIST_ROW_KEYS = {"id", "url", "title", "executor", "model", "createdAt", "completedAt"}

# Every alternative shape at once: each must be one the spec marks with its knob.
ALTERNATIVE_KNOBS = {
    "task_view_extras": True,
    "list_status": True,
    "done_status_words": "task",
    "cancel_answer": "204",
    "artifact_upload_wrapper": "bare",
    "upload_url_field": "url",
    "public_key_field": "key",
    "webhook_dedupe": True,
    "unknown_field": True,
    "artifacts_wrapper": "bare",
    "artifact_name_field": "name",
    "webhooks_wrapper": "webhooks",
}


def test_the_spec_knobs_are_the_servers(api):
    assert set(DEFAULT_KNOBS) == set(ALTERNATIVE_KNOBS) == knob_names()
    assert api.knobs() == DEFAULT_KNOBS


@pytest.mark.parametrize(
    "knobs",
    [
        ALTERNATIVE_KNOBS,
        {
            "cancel_answer": "empty",
            "artifact_upload_wrapper": "artifacts",
            "artifacts_wrapper": "artifacts",
        },
        {"cancel_answer": "ok"},
    ],
)
def test_every_endpoint_conforms_with_the_alternative_shapes(api, fake_rebyte, knobs):
    fake_rebyte.configure(**knobs)
    seen = _sweep(api, fake_rebyte)
    extras = knobs.get("task_view_extras", False)
    for task in seen["views"]:
        assert ("workspaceId" in task and "visibility" in task) == extras
    for row in seen["rows"]:
        assert ("status" in row) == knobs.get("list_status", False)
    answers = _objects(seen["views"] + seen["rows"])
    assert all(item.get("x_unknown") == 1 for item in answers) == knobs.get("unknown_field", False)


@pytest.mark.parametrize(
    "knobs",
    [
        {"task_read_lag": 1.0},
        {"final_result_delay": 1.0},
        {"empty_final_result": True},
        {"content_prompt_ids": False},
        {"submitted_equals_completed": True},
        {"service_executor": "opencode", "service_model": "gemini-3.1-pro"},
    ],
)
def test_the_real_service_habits_stay_within_the_spec(api, fake_rebyte, knobs):
    """The habits change values and timing, not fields: the default strict check holds."""
    fake_rebyte.configure(**knobs)
    _, created = api.call("POST", "/tasks", body={"prompt": "Habit", "executor": "codex"})
    validate_sse(_read_events(api, created["id"]))
    api.call("GET", f"/tasks/{created['id']}")
    api.call("GET", f"/tasks/{created['id']}/content", params={"include": "events"})
    api.call("GET", "/tasks")
    time.sleep(1.1)
    _, task = api.call("GET", f"/tasks/{created['id']}")
    assert task["status"] == "completed"


def test_events_route_off_answers_a_listed_404(api, fake_rebyte):
    _, created = api.call("POST", "/tasks", body={"prompt": "No stream"})
    fake_rebyte.configure(events_route=False)
    api.error("GET", f"/tasks/{created['id']}/events", 404, "not_found")
    api.call("GET", f"/tasks/{created['id']}")


@pytest.mark.parametrize(
    "knobs,method,path",
    [
        ({"task_view_extras": True}, "GET", "/tasks/{id}"),
        ({"list_status": True}, "GET", "/tasks"),
        ({"unknown_field": True}, "GET", "/tasks/{id}/content"),
        ({"cancel_answer": "ok"}, "POST", "/tasks/{id}/cancel"),
        ({"done_status_words": "task"}, "GET", "/tasks/{id}/events"),
    ],
)
def test_the_strict_check_catches_a_knob_only_shape_it_was_not_told_of(
    api, fake_rebyte, knobs, method, path
):
    """The check has teeth: an extra the server sends while the checker believes the
    defaults are on fails it."""
    _, created = api.call("POST", "/tasks", body={"prompt": "Caught"})
    api.wait_prompt(created["id"])
    fake_rebyte.configure(**knobs)
    api.knobs = lambda: DEFAULT_KNOBS  # the checker is not told
    path = path.format(id=created["id"])
    with pytest.raises(AssertionError, match="strictly"):
        if path.endswith("/events"):
            _read_events(api, created["id"])
        else:
            api.call(method, path)
