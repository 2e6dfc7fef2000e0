"""The local Rebyte server (tests/fake_rebyte.py) on its own, over real sockets.

Driven with plain `requests` and `http.client`, never the project's client, so that
the server is checked against the contract and tests/server-shapes.md alone.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
import requests
from fake_rebyte import FAULT_KINDS, FakeRebyte, final_result_for, generated_chunks

KEY = "rbk_test_key"
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
TIMEOUT = 10
SERVER_SCRIPT = Path(__file__).resolve().parent / "fake_rebyte.py"
MIB = 1024 * 1024


# ---- helpers -------------------------------------------------------------------------------


def call(
    server: FakeRebyte,
    method: str,
    path: str,
    *,
    key: str | None = KEY,
    headers: dict | None = None,
    **kwargs,
) -> requests.Response:
    sent = {} if key is None else {"API_KEY": key}
    sent.update(headers or {})
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.request(method, server.base_url + path, headers=sent, **kwargs)


def create_task(server: FakeRebyte, prompt: str = "Hello there", **fields) -> dict:
    response = call(server, "POST", "/tasks", json={"prompt": prompt, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def get_task(server: FakeRebyte, task_id: str) -> dict:
    response = call(server, "GET", f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll until predicate() is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(interval)


def wait_prompt(server: FakeRebyte, task_id: str, status: str, index: int = -1) -> dict:
    return wait_for(
        lambda: (lambda task: task if task["prompts"][index]["status"] == status else None)(
            get_task(server, task_id)
        )
    )


def file_slot(
    server: FakeRebyte, filename: str = "data.csv", content_type: str | None = "text/csv"
) -> dict:
    body = {"filename": filename}
    if content_type is not None:
        body["contentType"] = content_type
    response = call(server, "POST", "/files", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def uploaded_file(server: FakeRebyte, content: bytes = b"a,b\n1,2\n") -> dict:
    slot = file_slot(server)
    response = requests.put(
        slot["uploadUrl"], data=content, headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return slot


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


@dataclass
class Stream:
    """What one events connection gave: (name, data) messages, comments, the error if cut."""

    status: int
    headers: dict
    messages: list
    comments: list
    error: Exception | None

    @property
    def events(self) -> list:
        return [data for name, data in self.messages if name == "event"]

    @property
    def done(self) -> dict | None:
        return next((data for name, data in self.messages if name == "done"), None)


def open_events(
    server: FakeRebyte, task_id: str, timeout: float = TIMEOUT
) -> http.client.HTTPResponse:
    address = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)
    connection.request(
        "GET",
        f"/v1/tasks/{task_id}/events",
        headers={"API_KEY": KEY, "Accept": "text/event-stream"},
    )
    return connection.getresponse()


def read_events(response: http.client.HTTPResponse, max_events: int | None = None) -> Stream:
    """Read SSE lines as they come (readline does not wait for a full buffer)."""
    messages, comments, error, name = [], [], None, None
    try:
        while True:
            line = response.readline()
            if not line:
                break
            text = line.decode().rstrip("\r\n")
            if text.startswith(":"):
                comments.append(text)
            elif text.startswith("event:"):
                name = text[len("event:") :].strip()
            elif text.startswith("data:"):
                messages.append((name, json.loads(text[len("data:") :])))
                if max_events and sum(n == "event" for n, _ in messages) >= max_events:
                    break
    except (OSError, http.client.HTTPException) as exc:
        error = exc
    return Stream(response.status, dict(response.getheaders()), messages, comments, error)


def stream_events(server: FakeRebyte, task_id: str) -> Stream:
    response = open_events(server, task_id)
    try:
        return read_events(response)
    finally:
        response.close()


# ---- task life cycle -----------------------------------------------------------------------


def test_create_answers_the_documented_shape(fake_rebyte):
    response = call(fake_rebyte, "POST", "/tasks", json={"prompt": "Write a haiku"})
    assert response.status_code == 201
    assert re.fullmatch(r"req_[0-9a-f]+", response.headers["X-Request-Id"])
    created = response.json()
    assert set(created) == {"id", "workspaceId", "url", "status", "createdAt"}
    assert created["status"] == "running"
    assert created["url"].startswith("https://") and created["id"] in created["url"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created["createdAt"])
    task = get_task(fake_rebyte, created["id"])
    assert set(task) == TASK_VIEW_KEYS  # no workspaceId, no visibility: as documented
    assert set(task["prompts"][0]) == {"id", "status", "submittedAt", "completedAt"}
    assert task["title"] == "Write a haiku"
    assert (task["executor"], task["model"]) == ("claude", "lite")
    assert fake_rebyte.tasks_created == 1


def test_task_view_extras_knob_adds_workspace_and_visibility(make_fake_rebyte):
    server = make_fake_rebyte(task_view_extras=True)
    created = create_task(server)
    task = get_task(server, created["id"])
    assert set(task) == TASK_VIEW_KEYS | {"workspaceId", "visibility"}
    assert task["visibility"] == "shared" and task["workspaceId"] == created["workspaceId"]
    (row,) = call(server, "GET", "/tasks").json()["data"]
    assert set(row) == LIST_ROW_KEYS | {"workspaceId"}
    assert row["workspaceId"] == created["workspaceId"]
    server.configure(task_view_extras=False)
    assert set(get_task(server, created["id"])) == TASK_VIEW_KEYS
    assert set(call(server, "GET", "/tasks").json()["data"][0]) == LIST_ROW_KEYS


def test_list_status_knob(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.1)
    task_id = create_task(server)["id"]
    assert "status" not in call(server, "GET", "/tasks").json()["data"][0]
    server.configure(list_status=True)
    wait_prompt(server, task_id, "succeeded")
    (row,) = call(server, "GET", "/tasks").json()["data"]
    assert set(row) == LIST_ROW_KEYS | {"status"} and row["status"] == "completed"


def test_prompt_goes_pending_running_succeeded(fake_rebyte):
    prompt = "Count the files [duration=1]"
    created = create_task(fake_rebyte, prompt, executor="codex", model="pro")
    task = get_task(fake_rebyte, created["id"])
    assert task["prompts"][0]["status"] == "pending"
    assert task["status"] == "running"
    assert task["completedAt"] is None and task["finalResult"] is None
    assert task["prompts"][0]["completedAt"] is None
    assert (task["executor"], task["model"]) == ("codex", "pro")
    task = wait_prompt(fake_rebyte, created["id"], "running")
    assert task["status"] == "running" and task["completedAt"] is None
    task = wait_prompt(fake_rebyte, created["id"], "succeeded")
    assert task["status"] == "completed"
    assert task["completedAt"] == task["prompts"][0]["completedAt"] is not None
    assert task["completedAt"] > task["createdAt"]
    assert task["finalResult"] == final_result_for(prompt) == "Result for: Count the files"


def test_fail_marker_fails_the_prompt(fake_rebyte):
    created = create_task(fake_rebyte, "Break things [fail]")
    task = wait_prompt(fake_rebyte, created["id"], "failed")
    assert task["status"] == "failed"
    assert task["completedAt"] is not None and task["finalResult"] is None


def test_follow_up_makes_the_task_running_again(fake_rebyte):
    created = create_task(fake_rebyte, "First")
    wait_prompt(fake_rebyte, created["id"], "succeeded")
    response = call(
        fake_rebyte,
        "POST",
        f"/tasks/{created['id']}/prompts",
        json={"prompt": "Second [fail]", "skills": ["pdf"]},
    )
    assert response.status_code == 201
    prompt_id = response.json()["promptId"]
    task = get_task(fake_rebyte, created["id"])
    assert [p["id"] for p in task["prompts"]][-1] == prompt_id
    assert task["status"] == "running" and task["completedAt"] is None
    assert task["finalResult"] is None

    task = wait_prompt(fake_rebyte, created["id"], "failed")
    assert task["status"] == "failed"  # the latest prompt decides
    prompt_id = call(
        fake_rebyte, "POST", f"/tasks/{created['id']}/prompts", json={"prompt": "Third"}
    ).json()["promptId"]
    task = wait_prompt(fake_rebyte, created["id"], "succeeded")
    assert task["prompts"][-1]["id"] == prompt_id
    assert task["status"] == "completed" and task["finalResult"] == final_result_for("Third")
    assert (fake_rebyte.tasks_created, fake_rebyte.prompts_created) == (1, 2)


def test_cancel_moves_the_running_prompt_to_canceled(fake_rebyte):
    created = create_task(fake_rebyte, "Long job [duration=5]")
    wait_prompt(fake_rebyte, created["id"], "running")
    response = call(fake_rebyte, "POST", f"/tasks/{created['id']}/cancel")
    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "status": "canceled"}
    task = get_task(fake_rebyte, created["id"])
    assert task["prompts"][0]["status"] == "canceled"
    assert task["status"] == "canceled"
    assert task["completedAt"] is not None and task["finalResult"] is None
    # Idempotent, and the task still takes follow-ups.
    again = call(fake_rebyte, "POST", f"/tasks/{created['id']}/cancel")
    assert again.json() == {"id": created["id"], "status": "canceled"}
    call(fake_rebyte, "POST", f"/tasks/{created['id']}/prompts", json={"prompt": "Go on"})
    assert wait_prompt(fake_rebyte, created["id"], "succeeded")["status"] == "completed"


def test_cancel_of_a_pending_prompt_and_of_a_finished_task(fake_rebyte):
    pending = create_task(fake_rebyte, "Wait [duration=5]")
    assert call(fake_rebyte, "POST", f"/tasks/{pending['id']}/cancel").json()["status"] == (
        "canceled"
    )
    finished = create_task(fake_rebyte, "Quick [duration=0]")
    answer = call(fake_rebyte, "POST", f"/tasks/{finished['id']}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "completed"


def test_provision_delay_is_skipped_when_reusing_a_workspace(make_fake_rebyte):
    server = make_fake_rebyte(provision_delay=0.4, prompt_duration=0.1)
    started = time.monotonic()
    first = create_task(server)
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    second = create_task(server, workspaceId=first["workspaceId"])
    assert time.monotonic() - started < 0.3
    assert second["workspaceId"] == first["workspaceId"] and second["id"] != first["id"]


def test_visibility(fake_rebyte):
    task_id = create_task(fake_rebyte)["id"]
    public = call(
        fake_rebyte, "PATCH", f"/tasks/{task_id}/visibility", json={"visibility": "public"}
    )
    assert public.status_code == 200
    assert public.json()["shareUrl"].startswith("https://") and task_id in public.json()["shareUrl"]
    for visibility in ("private", "shared"):
        answer = call(
            fake_rebyte, "PATCH", f"/tasks/{task_id}/visibility", json={"visibility": visibility}
        )
        assert answer.json() == {"visibility": visibility}
    assert "visibility" not in get_task(fake_rebyte, task_id)  # not in the documented view
    fake_rebyte.configure(task_view_extras=True)
    assert get_task(fake_rebyte, task_id)["visibility"] == "shared"


def test_delete_is_soft_and_final(fake_rebyte):
    task_id = create_task(fake_rebyte)["id"]
    other = create_task(fake_rebyte)["id"]
    response = call(fake_rebyte, "DELETE", f"/tasks/{task_id}")
    assert response.status_code == 204 and response.content == b""
    assert "Content-Type" not in response.headers
    for method, path, body in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/prompts", {"prompt": "p"}),
        ("PATCH", "/visibility", {"visibility": "public"}),
        ("POST", "/cancel", None),
        ("GET", "/content", None),
        ("GET", "/events", None),
    ]:
        assert_error(
            call(fake_rebyte, method, f"/tasks/{task_id}{path}", json=body), 404, "not_found"
        )
    listing = call(fake_rebyte, "GET", "/tasks").json()
    assert [t["id"] for t in listing["data"]] == [other] and listing["total"] == 1


def test_content_lists_prompts_oldest_first(fake_rebyte):
    task_id = create_task(fake_rebyte, "One")["id"]
    wait_prompt(fake_rebyte, task_id, "succeeded")
    call(fake_rebyte, "POST", f"/tasks/{task_id}/prompts", json={"prompt": "Two [fail]"})
    wait_prompt(fake_rebyte, task_id, "failed")
    content = call(fake_rebyte, "GET", f"/tasks/{task_id}/content").json()
    assert content["id"] == task_id
    prompts = content["prompts"]
    assert [p["userPrompt"] for p in prompts] == ["One", "Two [fail]"]
    assert [p["response"] for p in prompts] == [final_result_for("One"), None]
    assert [p["status"] for p in prompts] == ["succeeded", "failed"]
    assert all(p["submittedAt"] and p["completedAt"] for p in prompts)
    assert all("events" not in p for p in prompts)
    with_events = call(
        fake_rebyte, "GET", f"/tasks/{task_id}/content", params={"include": "events"}
    ).json()["prompts"]
    assert with_events[-1]["events"] == stream_events(fake_rebyte, task_id).events
    assert with_events[0]["events"][-1]["payload"] == {"text": final_result_for("One")}


# ---- listing -------------------------------------------------------------------------------


def test_list_is_newest_first_and_pages(make_fake_rebyte):
    server = make_fake_rebyte(seed_tasks=7, prompt_duration=0.1)
    new_ids = [create_task(server, f"Task {n}")["id"] for n in range(3)]
    everything = call(server, "GET", "/tasks").json()
    assert (everything["total"], everything["limit"], everything["offset"]) == (10, 50, 0)
    ids = [entry["id"] for entry in everything["data"]]
    assert ids[:3] == new_ids[::-1] and len(set(ids)) == 10
    created = [entry["createdAt"] for entry in everything["data"]]
    assert created == sorted(created, reverse=True)
    entry = everything["data"][0]
    assert set(entry) == LIST_ROW_KEYS  # no status, no workspaceId: as documented
    assert everything["data"][-1]["title"] == "Seeded task 1"
    assert everything["data"][-1]["completedAt"] is not None

    pages = []
    for offset in range(0, 12, 3):
        page = call(server, "GET", "/tasks", params={"limit": 3, "offset": offset}).json()
        assert (page["total"], page["limit"], page["offset"]) == (10, 3, offset)
        pages += [entry["id"] for entry in page["data"]]
    assert pages == ids
    assert call(server, "GET", "/tasks", params={"offset": 50}).json()["data"] == []
    assert len(call(server, "GET", "/tasks", params={"limit": 100}).json()["data"]) == 10


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
    ],
)
def test_list_validation(fake_rebyte, params, field):
    body = assert_error(call(fake_rebyte, "GET", "/tasks", params=params), 400, "validation_error")
    assert field in body["error"]["message"]


# ---- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "object"),
        ("text", "object"),
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": " \n\t"}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": "x" * 100_001}, "prompt"),
        ({"prompt": "p", "executor": "gpt"}, "executor"),
        ({"prompt": "p", "executor": 1}, "executor"),
        ({"prompt": "p", "model": 5}, "model"),
        ({"prompt": "p", "skills": "pdf"}, "skills"),
        ({"prompt": "p", "skills": [""]}, "skills"),
        ({"prompt": "p", "skills": [1]}, "skills"),
        ({"prompt": "p", "files": "a.csv"}, "files"),
        ({"prompt": "p", "files": ["a.csv"]}, "files"),
        ({"prompt": "p", "files": [{"id": "x"}]}, "files"),
        ({"prompt": "p", "files": [{"id": "nope", "filename": "a.csv"}]}, "files"),
        ({"prompt": "p", "githubUrl": "not a repo"}, "githubUrl"),
        ({"prompt": "p", "githubUrl": "https://github.com/a/b"}, "githubUrl"),
        ({"prompt": "p", "githubUrl": "-owner/repo"}, "githubUrl"),
        ({"prompt": "p", "githubUrl": "owner/.."}, "githubUrl"),
        ({"prompt": "p", "githubUrl": 5}, "githubUrl"),
        ({"prompt": "p", "branchName": 5}, "branchName"),
        ({"prompt": "p", "workspaceId": "nope"}, "workspaceId"),
        ({"prompt": "p", "workspaceId": 5}, "workspaceId"),
    ],
)
def test_create_validation(fake_rebyte, body, field):
    response = call(fake_rebyte, "POST", "/tasks", json=body)
    error = assert_error(response, 400, "validation_error")
    assert field in error["error"]["message"]
    assert fake_rebyte.tasks_created == 0


def test_create_accepts_the_limits_and_ignores_unknown_fields(fake_rebyte):
    create_task(
        fake_rebyte,
        "x" * 100_000,
        githubUrl="octo-org/my.repo_1",
        branchName="dev",
        skills=["deep-research", "github:owner/repo#slug"],
        somethingNew={"a": 1},
    )
    assert fake_rebyte.tasks_created == 1


def test_bad_json_wrong_content_type_and_oversized_bodies(fake_rebyte):
    bad = call(
        fake_rebyte,
        "POST",
        "/tasks",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert "JSON" in assert_error(bad, 400, "validation_error")["error"]["message"]
    form = call(fake_rebyte, "POST", "/tasks", data={"prompt": "hi"})
    assert "application/json" in assert_error(form, 400, "validation_error")["error"]["message"]
    huge = json.dumps({"prompt": "p", "padding": "x" * (MIB + 10)})
    response = call(
        fake_rebyte, "POST", "/tasks", data=huge, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    chunked = call(
        fake_rebyte,
        "POST",
        "/tasks",
        data=iter([b'{"prompt": ', b'"chunked"}']),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 201, chunked.text
    assert fake_rebyte.tasks_created == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "filename"),
        ({"filename": ""}, "filename"),
        ({"filename": 5}, "filename"),
        ({"filename": "a" * 256}, "filename"),
        ({"filename": "dir/a.txt"}, "filename"),
        ({"filename": "a.txt", "contentType": 5}, "contentType"),
    ],
)
def test_file_slot_validation(fake_rebyte, body, field):
    error = assert_error(call(fake_rebyte, "POST", "/files", json=body), 400, "validation_error")
    assert field in error["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 100_001}, "prompt"),
        ({"prompt": "p", "skills": [""]}, "skills"),
        ({"prompt": "p", "files": [{"id": "nope", "filename": "n"}]}, "files"),
    ],
)
def test_follow_up_validation(fake_rebyte, body, field):
    task_id = create_task(fake_rebyte)["id"]
    error = assert_error(
        call(fake_rebyte, "POST", f"/tasks/{task_id}/prompts", json=body), 400, "validation_error"
    )
    assert field in error["error"]["message"]
    assert fake_rebyte.prompts_created == 0


@pytest.mark.parametrize("body", [{}, {"visibility": "secret"}, {"visibility": None}])
def test_visibility_validation(fake_rebyte, body):
    task_id = create_task(fake_rebyte)["id"]
    error = assert_error(
        call(fake_rebyte, "PATCH", f"/tasks/{task_id}/visibility", json=body),
        400,
        "validation_error",
    )
    assert "visibility" in error["error"]["message"]


# ---- auth, routing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["API_KEY", "api_key", "Api-Key", "api-key", "X-API-KEY", "x-api-key"]
)
def test_key_header_names_are_case_insensitive(fake_rebyte, header):
    response = call(fake_rebyte, "GET", "/tasks", key=None, headers={header: KEY})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"API_KEY": "rbk_wrong"}, {"Authorization": KEY}, {"API_KEY": ""}]
)
def test_missing_or_wrong_key_is_401(fake_rebyte, headers):
    for method, path in [
        ("GET", "/tasks"),
        ("POST", "/tasks"),
        ("GET", "/tasks/x/events"),
        ("GET", "/nowhere"),
    ]:
        response = call(
            fake_rebyte,
            method,
            path,
            key=None,
            headers=headers,
            json={"prompt": "p"} if method == "POST" else None,
        )
        assert_error(response, 401, "unauthorized")
    assert fake_rebyte.tasks_created == 0


def test_key_can_change_at_run_time(fake_rebyte):
    fake_rebyte.configure(key="rbk_rotated")
    assert call(fake_rebyte, "GET", "/tasks").status_code == 401
    assert call(fake_rebyte, "GET", "/tasks", key="rbk_rotated").status_code == 200


def test_unknown_paths_and_ids_are_404(fake_rebyte):
    for path in ("/nowhere", "/tasks/", "/tasks/x/y", "/files/x"):
        assert_error(call(fake_rebyte, "GET", path), 404, "not_found")
    root = requests.get(fake_rebyte.base_url[: -len("/v1")] + "/", timeout=TIMEOUT)
    assert_error(root, 404, "not_found")
    missing = "00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/cancel"),
        ("GET", "/content"),
        ("GET", "/events"),
    ]:
        assert_error(call(fake_rebyte, method, f"/tasks/{missing}{path}"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/tasks", "GET, POST"),
        ("DELETE", "/tasks", "GET, POST"),
        ("GET", "/files", "POST"),
        ("POST", "/tasks/x", "GET, DELETE"),
        ("GET", "/tasks/x/prompts", "POST"),
        ("PUT", "/tasks/x/visibility", "PATCH"),
        ("GET", "/tasks/x/cancel", "POST"),
        ("POST", "/tasks/x/events", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(fake_rebyte, method, path, allow):
    response = call(fake_rebyte, method, path)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allow


# ---- files and the upload host -------------------------------------------------------------


def test_file_slot_names_are_unique_variants(fake_rebyte):
    names = set()
    for _ in range(20):
        slot = file_slot(fake_rebyte, "data.csv")
        assert re.fullmatch(r"data-[0-9a-f]{4}\.csv", slot["filename"]), slot
        assert slot["filename"] == f"data-{slot['id'][:4]}.csv"
        names.add(slot["filename"])
    assert len(names) == 20
    url = urlsplit(file_slot(fake_rebyte, "README")["uploadUrl"])
    assert f"{url.scheme}://{url.netloc}" == fake_rebyte.upload_base_url
    assert url.hostname == "127.0.0.2"
    assert set(dict(parse_qsl(url.query))) == {"expires", "signature"}
    assert file_slot(fake_rebyte, "README")["filename"].startswith("README-")


def test_upload_then_attach(fake_rebyte, tmp_path):
    fake_rebyte.configure(upload_dir=str(tmp_path))
    slot = file_slot(fake_rebyte, "notes.txt", content_type=None)
    assert fake_rebyte.file_info(slot["id"])["contentType"] == "application/octet-stream"
    never = file_slot(fake_rebyte, "never.txt")
    files = [{"id": slot["id"], "filename": slot["filename"]}]
    assert_error(
        call(fake_rebyte, "POST", "/tasks", json={"prompt": "p", "files": files}),
        400,
        "validation_error",
    )  # not uploaded yet
    for content in (b"first version", b"second"):  # a re-PUT replaces
        response = requests.put(
            slot["uploadUrl"],
            data=content,
            timeout=TIMEOUT,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 200 and response.content == b""
    assert (tmp_path / slot["filename"]).read_bytes() == b"second"
    assert fake_rebyte.file_info(slot["id"])["size"] == len(b"second")

    wrong_name = [{"id": slot["id"], "filename": "notes.txt"}]
    error = assert_error(
        call(fake_rebyte, "POST", "/tasks", json={"prompt": "p", "files": wrong_name}),
        400,
        "validation_error",
    )
    assert slot["filename"] in error["error"]["message"]
    never_files = [{"id": never["id"], "filename": never["filename"]}]
    error = assert_error(
        call(fake_rebyte, "POST", "/tasks", json={"prompt": "p", "files": never_files}),
        400,
        "validation_error",
    )
    assert "uploaded" in error["error"]["message"]
    task_id = create_task(fake_rebyte, "Read it", files=files)["id"]
    events = stream_events(fake_rebyte, task_id).events
    tool_result = next(e for e in events if e["eventType"] == "tool_result")
    assert tool_result["payload"]["output"] == slot["filename"]


def test_upload_needs_a_content_length(fake_rebyte):
    slot = file_slot(fake_rebyte)
    response = requests.put(
        slot["uploadUrl"],
        data=iter([b"a,b\n", b"1,2\n"]),
        headers={"Content-Type": "text/csv"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 411
    assert "<Code>MissingContentLength</Code>" in response.text
    assert fake_rebyte.file_info(slot["id"])["uploaded"] is False


def test_upload_refuses_a_wrong_content_type_signature_or_method(fake_rebyte):
    slot = file_slot(fake_rebyte)
    session = requests.Session()
    for headers in ({"Content-Type": "text/plain"}, {}):
        response = session.put(slot["uploadUrl"], data=b"x", headers=headers, timeout=TIMEOUT)
        assert response.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    url = urlsplit(slot["uploadUrl"])
    query = dict(parse_qsl(url.query))
    for changed in ({"signature": "0" * 64}, {"expires": str(int(query["expires"]) + 1)}, {}):
        bad = url._replace(query=urlencode({**query, **changed}) if changed else "").geturl()
        response = session.put(
            bad, data=b"x", headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
        )
        assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text
    response = session.get(slot["uploadUrl"], timeout=TIMEOUT)
    assert response.status_code == 405 and response.headers["Allow"] == "PUT"
    assert fake_rebyte.file_info(slot["id"])["uploaded"] is False
    # Small refused bodies are read and dropped: the connection stayed usable throughout.
    assert len({e["connection"] for e in fake_rebyte.requests(listener="upload")}) == 1


def test_expired_upload_url_is_403(make_fake_rebyte):
    server = make_fake_rebyte(upload_url_ttl=0)
    slot = file_slot(server)
    response = requests.put(
        slot["uploadUrl"], data=b"x", headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
    )
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/xml")
    assert "<Code>ExpiredToken</Code>" in response.text


def _peak_memory_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))


def _start_cli(*args: str) -> tuple:
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--key", KEY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, process.stdout.readline().strip()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_300_mib_upload_is_streamed_in_constant_memory(tmp_path):
    sparse = tmp_path / "big.bin"
    with open(sparse, "wb") as handle:
        handle.truncate(300 * MIB)
    process, base_url = _start_cli()
    try:
        server = type("Cli", (), {"base_url": base_url})
        slot = file_slot(server, "big.bin", content_type="application/octet-stream")
        before = _peak_memory_kib(process.pid)
        with open(sparse, "rb") as body:
            response = requests.put(
                slot["uploadUrl"],
                data=body,
                timeout=60,
                headers={"Content-Type": "application/octet-stream"},
            )
        assert response.status_code == 200, response.text
        growth_mib = (_peak_memory_kib(process.pid) - before) / 1024
        assert growth_mib < 48, f"the server's peak memory grew {growth_mib:.0f} MiB"
        task = create_task(server, "p", files=[{"id": slot["id"], "filename": slot["filename"]}])
        assert task["status"] == "running"
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---- faults --------------------------------------------------------------------------------


def _check_fault_answer(fault: str, attempt, created: int = 201) -> None:
    """Make one request with `attempt()` and check what the client sees for `fault`.

    `created` is the success status of the route: the 2xx that faulty bodies come with.
    """
    if fault in ("reset", "short-body"):
        with pytest.raises(
            requests.ConnectionError if fault == "reset" else requests.RequestException
        ):
            attempt(TIMEOUT)
        return
    if fault == "stall":
        with pytest.raises(requests.ReadTimeout):
            attempt(0.3)
        return
    response = attempt(TIMEOUT)
    assert re.fullmatch(r"req_[0-9a-f]+", response.headers["X-Request-Id"])
    status = {
        "empty-200": 200,
        "html-200": 200,
        "truncated-json": created,
        "wrong-shape": created,
        "204": 204,
        "403-expired": 403,
    }.get(fault) or int(fault[:3])
    assert response.status_code == status
    if fault == "429":
        assert response.headers["Retry-After"] == "7"
        assert response.json()["error"]["code"] == "rate_limited"
    elif fault in ("500", "502", "503"):
        assert response.json()["error"]["code"] == "internal_error"
    elif fault in ("502-html", "503-html", "html-200"):
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.text.lstrip().startswith("<!DOCTYPE html>")
    elif fault in ("empty-200", "204"):
        assert response.content == b""
    elif fault == "truncated-json":
        with pytest.raises(ValueError):
            json.loads(response.content)
    elif fault == "wrong-shape":
        assert isinstance(response.json(), list)
    elif fault == "403-expired":
        assert "<Code>ExpiredToken</Code>" in response.text


@pytest.mark.parametrize("fault", FAULT_KINDS)
def test_scripted_fault_replaces_the_answer(make_fake_rebyte, fault):
    server = make_fake_rebyte(retry_after="7")
    server.inject("POST", "/v1/tasks", fault)
    _check_fault_answer(
        fault, lambda timeout: call(server, "POST", "/tasks", json={"prompt": "p"}, timeout=timeout)
    )
    wait_for(lambda: server.requests("POST")[0]["fault"] == fault)
    assert server.tasks_created == 0  # after=False: nothing happened
    create_task(server)  # the fault was used up
    entries = server.requests("POST", "/v1/tasks")
    assert [e["fault"] for e in entries] == [fault, None]
    assert entries[0]["json"] == {"prompt": "p"}
    if fault not in ("reset", "stall"):
        assert entries[0]["status"] is not None
    assert entries[1]["status"] == 201
    assert server.tasks_created == 1


@pytest.mark.parametrize("fault", ["502", "reset", "truncated-json", "wrong-shape", "stall"])
def test_fault_after_processing_still_creates_the_task(make_fake_rebyte, fault):
    server = make_fake_rebyte()
    server.inject("POST", "/v1/tasks", fault, after=True)
    _check_fault_answer(
        fault,
        lambda timeout: call(
            server, "POST", "/tasks", json={"prompt": "Lost answer"}, timeout=timeout
        ),
    )
    assert server.tasks_created == 1
    listing = call(server, "GET", "/tasks").json()
    assert listing["total"] == 1 and listing["data"][0]["title"] == "Lost answer"
    if fault == "wrong-shape":
        assert server.requests("POST")[0]["status"] == 201


def test_scripted_fault_count_method_and_path(fake_rebyte):
    fake_rebyte.inject("GET", r"/v1/tasks/[^/]+", "503", count=2)
    task_id = create_task(fake_rebyte)["id"]
    assert call(fake_rebyte, "GET", "/tasks").status_code == 200  # path does not match
    statuses = [call(fake_rebyte, "GET", f"/tasks/{task_id}").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    fake_rebyte.inject("*", "/v1/tasks", "429")
    assert call(fake_rebyte, "GET", "/tasks").status_code == 429
    fake_rebyte.inject("GET", "/v1/tasks", "500", count=5)
    fake_rebyte.clear_faults()
    assert call(fake_rebyte, "GET", "/tasks").status_code == 200
    with pytest.raises(ValueError):
        fake_rebyte.inject("GET", "/v1/tasks", "418")


def test_faults_on_the_upload_host(fake_rebyte):
    slot = file_slot(fake_rebyte)
    fake_rebyte.inject("PUT", r"/upload/.*", "503")
    fake_rebyte.inject("PUT", r"/upload/.*", "403-expired")
    for status in (503, 403):
        response = requests.put(
            slot["uploadUrl"],
            data=b"x" * 1000,
            timeout=TIMEOUT,
            headers={"Content-Type": "text/csv"},
        )
        assert response.status_code == status
        assert fake_rebyte.file_info(slot["id"])["uploaded"] is False
    fake_rebyte.inject("PUT", r"/upload/.*", "reset", after=True)
    with pytest.raises(requests.ConnectionError):
        requests.put(
            slot["uploadUrl"],
            data=b"x" * 1000,
            timeout=TIMEOUT,
            headers={"Content-Type": "text/csv"},
        )
    assert fake_rebyte.file_info(slot["id"])["uploaded"] is True  # processed, then reset
    uploads = fake_rebyte.requests("PUT", listener="upload")
    assert [e["fault"] for e in uploads] == ["503", "403-expired", "reset"]
    assert [e["body_bytes"] for e in uploads] == [1000, 1000, 1000]


def _fault_sequence(server: FakeRebyte, count: int = 40) -> list:
    for _ in range(count):
        call(server, "GET", "/tasks")
    return [entry["fault"] for entry in server.requests("GET", "/v1/tasks")]


def test_random_faults_are_reproducible_by_seed(make_fake_rebyte):
    knobs = {"fault_rate": 0.5, "fault_kinds": ("429", "500", "502-html", "503")}
    first = _fault_sequence(make_fake_rebyte(seed=7, **knobs))
    second = _fault_sequence(make_fake_rebyte(seed=7, **knobs))
    other = _fault_sequence(make_fake_rebyte(seed=8, **knobs))
    assert first == second and first != other
    assert 5 < sum(fault is not None for fault in first) < 35
    assert {fault for fault in first if fault} <= set(knobs["fault_kinds"])


def test_random_faults_respect_routes_and_carry_retry_after(make_fake_rebyte):
    server = make_fake_rebyte(
        fault_rate=1.0, fault_kinds=["429"], retry_after="3", fault_routes=[("POST", r"/v1/tasks")]
    )
    assert call(server, "GET", "/tasks").status_code == 200
    response = call(server, "POST", "/tasks", json={"prompt": "p"})
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert server.tasks_created == 0
    server.configure(fault_after=True, fault_kinds=["502"])
    assert call(server, "POST", "/tasks", json={"prompt": "p"}).status_code == 502
    assert server.tasks_created == 1
    server.configure(fault_rate=0.0)
    assert call(server, "POST", "/tasks", json={"prompt": "p"}).status_code == 201
    with pytest.raises(TypeError):
        server.configure(no_such_knob=1)
    with pytest.raises(ValueError):
        server.configure(fault_kinds=["418"])


def test_stop_ends_a_stall_promptly(make_fake_rebyte):
    server = make_fake_rebyte()
    server.inject("GET", "/v1/tasks", "stall")
    outcome = []

    def stalled_request():
        try:
            outcome.append(call(server, "GET", "/tasks", timeout=30))
        except requests.RequestException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=stalled_request)
    thread.start()
    wait_for(lambda: server.requests("GET"))
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    thread.join(5)
    assert isinstance(outcome[0], requests.ConnectionError)
    assert server.requests("GET")[0]["status"] is None


def test_a_stall_ends_when_the_client_leaves(make_fake_rebyte):
    finished = []
    server = make_fake_rebyte(log_sink=finished.append)
    server.inject("GET", "/v1/tasks", "stall")
    with pytest.raises(requests.ReadTimeout):
        call(server, "GET", "/tasks", timeout=0.3)
    entry = wait_for(lambda: finished and finished[0], timeout=3)
    assert (entry["fault"], entry["status"]) == ("stall", None)


def test_stop_is_prompt_with_open_streams_and_provisioning(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=3, keepalive_interval=0.05)
    task_id = create_task(server)["id"]
    response = open_events(server, task_id)
    assert read_events(response, max_events=1).events[0]["eventType"] == "init"
    server.configure(provision_delay=30)
    outcome = []

    def provisioning():
        try:
            outcome.append(call(server, "POST", "/tasks", json={"prompt": "p"}))
        except requests.RequestException as exc:
            outcome.append(exc)

    creating = threading.Thread(target=provisioning)
    creating.start()
    wait_for(lambda: len(server.requests("POST")) == 2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    creating.join(5)
    assert isinstance(outcome[0], requests.ConnectionError)
    assert read_events(response).done is None  # cut, not finished
    response.close()
    assert server.tasks_created == 1


# ---- request log ---------------------------------------------------------------------------


def test_request_log_records_what_was_received(fake_rebyte):
    slot = file_slot(fake_rebyte)
    requests.put(
        slot["uploadUrl"], data=b"12345", headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
    )
    call(fake_rebyte, "GET", "/tasks", params={"limit": "5"}, headers={"X-Trace": "t1"})
    api = fake_rebyte.requests()
    assert [(e["method"], e["path"]) for e in api] == [("POST", "/v1/files"), ("GET", "/v1/tasks")]
    created, listing = api
    assert created["json"] == {"filename": "data.csv", "contentType": "text/csv"}
    assert created["body_bytes"] == len(json.dumps(created["json"]))
    assert created["status"] == 201 and created["headers"]["API_KEY"] == KEY
    assert listing["query"] == {"limit": "5"} and listing["headers"]["X-Trace"] == "t1"
    assert listing["json"] is None and listing["fault"] is None
    assert re.fullmatch(r"req_[0-9a-f]+", listing["request_id"])
    assert time.time() - 10 < listing["time"] <= time.time()

    (upload,) = fake_rebyte.requests(listener="upload")
    assert upload["listener"] == "upload" and upload["path"] == f"/upload/{slot['id']}"
    assert upload["body_bytes"] == 5 and upload["status"] == 200 and upload["json"] is None
    names = {name.lower() for name in upload["headers"]}
    assert {"content-type", "content-length"} <= names
    assert not names & {"api_key", "api-key", "x-api-key"}
    assert len(fake_rebyte.requests(listener=None)) == 3
    assert fake_rebyte.requests("post", r"/v1/.*") == [created]
    fake_rebyte.clear_log()
    assert fake_rebyte.request_log == []


def test_connection_ids_show_keep_alive(fake_rebyte):
    session = requests.Session()
    session.headers["API_KEY"] = KEY
    for path in ("/tasks", "/tasks/nope", "/tasks"):
        session.get(fake_rebyte.base_url + path, timeout=TIMEOUT)
    call(fake_rebyte, "GET", "/tasks")
    ids = [entry["connection"] for entry in fake_rebyte.requests("GET")]
    assert ids[0] == ids[1] == ids[2] != ids[3]


# ---- events --------------------------------------------------------------------------------


def test_event_stream_of_a_prompt(fake_rebyte):
    prompt = "Explain the code [ask]"
    task_id = create_task(fake_rebyte, prompt)["id"]
    stream = stream_events(fake_rebyte, task_id)
    assert stream.status == 200 and stream.error is None
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert stream.headers["Cache-Control"] == "no-cache"
    assert "Content-Length" not in stream.headers
    events = stream.events
    assert [e["eventType"] for e in events] == [
        "init",
        "thinking",
        "tool_use",
        "tool_result",
        "text",
        "ask_user_question",
        "result",
    ]
    prompt_id = get_task(fake_rebyte, task_id)["prompts"][0]["id"]
    assert [e["seq"] for e in events] == list(range(7))
    assert [e["eventKey"] for e in events] == [f"{prompt_id}:{n}" for n in range(7)]
    assert {e["promptId"] for e in events} == {prompt_id}
    assert all(re.fullmatch(r".+T.+\.\d{3}Z", e["timestamp"]) for e in events)
    assert events[2]["payload"] == {"tool": "bash", "input": {"command": "ls /code"}}
    assert events[5]["payload"]["question"]
    assert events[-1]["payload"] == {"text": final_result_for(prompt)}
    assert stream.messages[-1] == (
        "done",
        {"status": "succeeded", "lastSeq": 6, "finalResult": final_result_for(prompt)},
    )


def test_event_stream_of_a_failed_prompt_and_of_the_latest_prompt(fake_rebyte):
    task_id = create_task(fake_rebyte, "Break [fail]")["id"]
    stream = stream_events(fake_rebyte, task_id)
    assert stream.events[-1]["eventType"] == "result"
    assert stream.events[-1]["payload"]["isError"] is True
    assert stream.done == {"status": "failed", "lastSeq": 5, "finalResult": None}
    prompt_id = call(
        fake_rebyte, "POST", f"/tasks/{task_id}/prompts", json={"prompt": "Retry"}
    ).json()["promptId"]
    stream = stream_events(fake_rebyte, task_id)
    assert {e["promptId"] for e in stream.events} == {prompt_id}
    assert stream.done["status"] == "succeeded"  # the prompt's word, not the task's


def test_each_connection_replays_from_seq_0(fake_rebyte):
    task_id = create_task(fake_rebyte, "Slowly [duration=0.8]")["id"]
    partial = open_events(fake_rebyte, task_id)
    first = read_events(partial, max_events=2).events
    partial.close()
    assert [e["seq"] for e in first] == [0, 1]
    again = stream_events(fake_rebyte, task_id)
    assert again.events[:2] == first and again.done["lastSeq"] == 5
    assert stream_events(fake_rebyte, task_id).messages == again.messages


def test_early_done_race(make_fake_rebyte):
    server = make_fake_rebyte(events_early_done=True)
    task_id = create_task(server, "Starts late [duration=3]")["id"]
    early = stream_events(server, task_id)
    assert early.messages == [("done", {"status": "pending", "lastSeq": -1, "finalResult": None})]
    assert early.error is None
    server.configure(events_early_done=False)
    call(server, "POST", f"/tasks/{task_id}/cancel")
    later = stream_events(server, task_id)
    assert later.done["status"] == "canceled"


def test_early_done_only_before_the_first_event(make_fake_rebyte):
    server = make_fake_rebyte(events_early_done=True, prompt_duration=0.2)
    task_id = create_task(server)["id"]
    wait_prompt(server, task_id, "succeeded")
    stream = stream_events(server, task_id)
    assert stream.done["status"] == "succeeded" and stream.done["lastSeq"] == 5


@pytest.mark.parametrize("mode", ["reset", "eof"])
def test_dropped_connections(make_fake_rebyte, mode):
    server = make_fake_rebyte(
        events_drop_after=2, events_drops=2, events_drop_mode=mode, prompt_duration=0.4
    )
    task_id = create_task(server)["id"]
    for _ in range(2):
        cut = stream_events(server, task_id)
        assert cut.done is None
        assert [e["seq"] for e in cut.events] == [0, 1]
        if mode == "reset":
            assert isinstance(cut.error, ConnectionResetError)
        else:
            assert cut.error is None
    whole = stream_events(server, task_id)
    assert [e["seq"] for e in whole.events] == list(range(6))
    assert whole.done["status"] == "succeeded"


def test_keep_alive_comments_while_waiting(make_fake_rebyte):
    server = make_fake_rebyte(keepalive_interval=0.05)
    task_id = create_task(server, "Quiet [duration=1]")["id"]
    stream = stream_events(server, task_id)
    assert stream.done["status"] == "succeeded"
    assert len(stream.comments) >= 5 and set(stream.comments) == {": keep-alive"}


def test_cancel_during_a_stream_ends_it_with_canceled(fake_rebyte):
    task_id = create_task(fake_rebyte, "Long [duration=3]")["id"]
    response = open_events(fake_rebyte, task_id)
    seen = read_events(response, max_events=1)
    assert seen.events[0]["eventType"] == "init"
    started = time.monotonic()
    call(fake_rebyte, "POST", f"/tasks/{task_id}/cancel")
    rest = read_events(response)
    response.close()
    assert time.monotonic() - started < 1.0
    assert rest.done["status"] == "canceled" and rest.done["finalResult"] is None
    assert rest.done["lastSeq"] == len(seen.events) + len(rest.events) - 1
    assert get_task(fake_rebyte, task_id)["status"] == "canceled"


# ---- command line --------------------------------------------------------------------------


def test_command_line_serves_until_sigterm(tmp_path):
    log = tmp_path / "requests.jsonl"
    process, base_url = _start_cli(
        "--prompt-duration", "0.1", "--log", str(log), "--seed-tasks", "2"
    )
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url), base_url
        server = type("Cli", (), {"base_url": base_url})
        assert call(server, "GET", "/tasks").json()["total"] == 2
        assert call(server, "GET", "/tasks", key="rbk_other").status_code == 401
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert time.monotonic() - started < 3
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert re.fullmatch(r"http://127\.0\.0\.2:\d+", process.stderr.read().strip())
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    # An entry is written once its answer is sent, from the connection's own thread: two
    # requests on two connections may be logged in either order.
    logged = sorted((e["path"], e["status"]) for e in lines)
    assert logged == [("/v1/tasks", 200), ("/v1/tasks", 401)]


def test_command_line_plants_generated_artifacts():
    process, base_url = _start_cli(
        "--plant-artifact",
        "ws-bench/big.bin:200000",
        "--plant-artifact",
        "ws-bench/reports/a:b.txt:5",
    )
    try:
        server = type("Cli", (), {"base_url": base_url})
        listed = call(server, "GET", "/workspaces/ws-bench/artifacts").json()["data"]
        assert [(e["filename"], e["size"]) for e in listed] == [
            ("big.bin", 200000),
            ("reports/a:b.txt", 5),
        ]
        response = call(server, "GET", "/workspaces/ws-bench/artifacts/big.bin")
        assert response.status_code == 200 and len(response.content) == 200000
        assert response.content == b"".join(generated_chunks("ws-bench/big.bin", 200000))
    finally:
        process.kill()
        process.wait()
    bad = subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), "--plant-artifact", "big.bin:9"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "WORKSPACE/NAME:SIZE" in bad.stderr


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery")
def test_command_line_exits_cleanly_on_sigint():
    process, base_url = _start_cli()
    try:
        assert base_url.endswith("/v1")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# ---- Agent Computers -----------------------------------------------------------------------


def create_computer(server: FakeRebyte, **fields) -> dict:
    response = call(server, "POST", "/agent-computers", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


def get_computer(server: FakeRebyte, computer_id: str) -> dict:
    response = call(server, "GET", f"/agent-computers/{computer_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_computer_is_ready_after_the_delay(make_fake_rebyte):
    server = make_fake_rebyte(computer_ready_delay=0.4)
    started = time.monotonic()
    computer = create_computer(server, name="Build box", icon="box")
    assert time.monotonic() - started < 0.3  # the create does not wait for the VM
    assert computer["status"] == "provisioning" and computer["sandboxId"] is None
    assert computer["name"] == "Build box" and computer["icon"] == "box"
    assert computer["provisionError"] is None and computer["url"].endswith(computer["id"])
    assert get_computer(server, computer["id"])["status"] == "provisioning"
    ready = wait_for(
        lambda: (lambda c: c if c["status"] == "ready" else None)(
            get_computer(server, computer["id"])
        )
    )
    assert time.monotonic() - started >= 0.4
    assert ready["sandboxId"] and ready["provisionError"] is None
    assert ready["updatedAt"] > ready["createdAt"]
    assert create_computer(server)["name"] == "Agent Computer"


def test_provision_error_marker(make_fake_rebyte):
    server = make_fake_rebyte(computer_ready_delay=0.05)
    computer = create_computer(server, name="doomed [provision-error]")
    failed = wait_for(
        lambda: (lambda c: c if c["status"] != "provisioning" else None)(
            get_computer(server, computer["id"])
        )
    )
    assert failed["status"] == "error" and failed["sandboxId"] is None
    assert "provision" in failed["provisionError"]
    response = call(server, "POST", "/tasks", json={"prompt": "p", "workspaceId": computer["id"]})
    assert "workspaceId" in assert_error(response, 400, "validation_error")["error"]["message"]


def test_task_in_a_computer_skips_provisioning_and_refuses_a_not_ready_one(make_fake_rebyte):
    server = make_fake_rebyte(computer_ready_delay=0.3, provision_delay=2.0, prompt_duration=0.1)
    computer = create_computer(server)
    response = call(
        server, "POST", "/tasks", json={"prompt": "too soon", "workspaceId": computer["id"]}
    )
    assert "workspaceId" in assert_error(response, 400, "validation_error")["error"]["message"]
    wait_for(lambda: get_computer(server, computer["id"])["status"] == "ready")
    started = time.monotonic()
    task = create_task(server, "inside", workspaceId=computer["id"])
    assert time.monotonic() - started < 1.0
    assert task["workspaceId"] == computer["id"]
    server.configure(task_view_extras=True)
    assert get_task(server, task["id"])["workspaceId"] == computer["id"]
    listed = call(server, "GET", "/tasks").json()["data"]
    assert listed[0]["workspaceId"] == computer["id"]
    assert server.tasks_created == 1


def test_computer_list_delete_and_validation(make_fake_rebyte):
    server = make_fake_rebyte(computer_ready_delay=0)
    made = [create_computer(server, name=f"c{number}")["id"] for number in range(3)]
    page = call(server, "GET", "/agent-computers", params={"limit": 2}).json()
    assert [item["id"] for item in page["data"]] == made[::-1][:2]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    rest = call(server, "GET", "/agent-computers", params={"limit": 2, "offset": 2}).json()
    assert [item["id"] for item in rest["data"]] == [made[0]]
    assert call(server, "DELETE", f"/agent-computers/{made[1]}").status_code == 204
    assert_error(call(server, "GET", f"/agent-computers/{made[1]}"), 404, "not_found")
    assert_error(call(server, "DELETE", f"/agent-computers/{made[1]}"), 404, "not_found")
    assert call(server, "GET", "/agent-computers").json()["total"] == 2
    response = call(server, "POST", "/tasks", json={"prompt": "p", "workspaceId": made[1]})
    assert_error(response, 400, "validation_error")
    for body, field in [
        ({"name": "n" * 201}, "name"),
        ({"name": 5}, "name"),
        ({"icon": "i" * 51}, "icon"),
        ({"icon": ["x"]}, "icon"),
    ]:
        message = assert_error(
            call(server, "POST", "/agent-computers", json=body), 400, "validation_error"
        )["error"]["message"]
        assert field in message
    assert create_computer(server, name="n" * 200, icon="i" * 50)["status"] == "ready"
    for params in ({"limit": "0"}, {"limit": "101"}, {"offset": "-1"}):
        assert_error(
            call(server, "GET", "/agent-computers", params=params), 400, "validation_error"
        )
    response = call(server, "PUT", f"/agent-computers/{made[0]}")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, DELETE"


# ---- artifacts -----------------------------------------------------------------------------


def list_artifacts(server: FakeRebyte, workspace_id: str):
    response = call(server, "GET", f"/workspaces/{workspace_id}/artifacts")
    assert response.status_code == 200, response.text
    return response.json()


def finished_task(server: FakeRebyte, prompt: str = "Write a report") -> dict:
    task = create_task(server, prompt)
    wait_prompt(server, task["id"], "succeeded")
    return task


def test_a_succeeded_prompt_leaves_a_report_and_a_binary(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.1, artifact_bytes=5000)
    task = finished_task(server, "Summarise the sales figures")
    workspace = task["workspaceId"]
    entries = list_artifacts(server, workspace)["data"]
    assert [entry["filename"] for entry in entries] == ["output-1.bin", "report-1.md"]
    assert set(entries[0]) == {"filename", "size", "contentType", "updatedAt"}
    assert entries[0]["size"] == 5000 and entries[0]["contentType"] == "application/octet-stream"
    report = call(server, "GET", f"/workspaces/{workspace}/artifacts/report-1.md")
    assert report.headers["Content-Type"].startswith("text/markdown")
    assert "Summarise the sales figures" in report.text
    assert report.content == server.artifact_bytes(workspace, "report-1.md")
    binary = call(server, "GET", f"/workspaces/{workspace}/artifacts/output-1.bin")
    assert len(binary.content) == 5000 == int(binary.headers["Content-Length"])
    assert binary.content == server.artifact_bytes(workspace, "output-1.bin")
    assert len(set(binary.content)) > 200  # generated bytes, not a constant fill
    call(server, "POST", f"/tasks/{task['id']}/prompts", json={"prompt": "Again [fail]"})
    call(server, "POST", f"/tasks/{task['id']}/prompts", json={"prompt": "And again"})
    wait_prompt(server, task["id"], "succeeded", index=2)
    names = [entry["filename"] for entry in list_artifacts(server, workspace)["data"]]
    assert names == ["output-1.bin", "output-3.bin", "report-1.md", "report-3.md"]


def test_generated_bytes_are_deterministic(make_fake_rebyte):
    first, second = make_fake_rebyte(), make_fake_rebyte()
    for server in (first, second):
        server.add_artifact("ws", "big.bin", size=200_000)
    assert first.artifact_bytes("ws", "big.bin") == second.artifact_bytes("ws", "big.bin")
    second.add_artifact("ws", "other.bin", size=200_000)
    assert second.artifact_bytes("ws", "other.bin") != second.artifact_bytes("ws", "big.bin")
    digest = hashlib.sha256(first.artifact_bytes("ws", "big.bin")).hexdigest()
    assert first.artifact_sha256("ws", "big.bin") == digest
    with pytest.raises(ValueError):
        first.add_artifact("ws", "x", data=b"1", size=1)


@pytest.mark.parametrize(
    ("wrapper", "field"),
    [("data", "filename"), ("artifacts", "name"), ("bare", "name"), ("bare", "filename")],
)
def test_artifact_list_knobs(make_fake_rebyte, wrapper, field):
    server = make_fake_rebyte(artifacts_wrapper=wrapper, artifact_name_field=field)
    server.add_artifact("ws-1", "a.txt", data=b"hello")
    listed = list_artifacts(server, "ws-1")
    entries = listed if wrapper == "bare" else listed[wrapper]
    assert isinstance(entries, list) and entries[0][field] == "a.txt"
    assert entries[0]["size"] == 5
    other = "filename" if field == "name" else "name"
    assert other not in entries[0]


def test_knob_values_are_checked(fake_rebyte):
    for knob, value in [
        ("artifacts_wrapper", "items"),
        ("artifact_name_field", "path"),
        ("artifact_download", "proxy"),
        ("webhooks_wrapper", "bare"),
        ("computer_ready_delay", -1),
        ("artifact_bytes", float("inf")),
    ]:
        with pytest.raises(ValueError):
            fake_rebyte.configure(**{knob: value})


def test_hostile_and_nested_names_download_as_one_segment(fake_rebyte):
    names = [
        "reports/q1.pdf",
        "../escape.txt",
        "/etc/passwd",
        "a b%20c?.txt",
        "x" * 300,
        "nul\x00byte",
        "ünï.md",
    ]
    for name in names:
        fake_rebyte.add_artifact("ws-h", name, data=name.encode("utf-8") + b"!")
    listed = {entry["filename"] for entry in list_artifacts(fake_rebyte, "ws-h")["data"]}
    assert listed == set(names)
    for name in names:
        response = call(fake_rebyte, "GET", f"/workspaces/ws-h/artifacts/{quote(name, safe='')}")
        assert response.status_code == 200, (name, response.text)
        assert response.content == name.encode("utf-8") + b"!"
    response = call(fake_rebyte, "GET", "/workspaces/ws-h/artifacts/reports/q1.pdf")
    assert_error(response, 404, "not_found")  # an unencoded / is two segments: no such route


def test_unknown_workspace_and_artifact_are_404(fake_rebyte):
    assert_error(call(fake_rebyte, "GET", "/workspaces/nope/artifacts"), 404, "not_found")
    assert_error(call(fake_rebyte, "GET", "/workspaces/nope/artifacts/a.txt"), 404, "not_found")
    task = create_task(fake_rebyte)
    response = call(fake_rebyte, "GET", f"/workspaces/{task['workspaceId']}/artifacts/none")
    assert_error(response, 404, "not_found")
    assert list_artifacts(fake_rebyte, task["workspaceId"]) == {"data": []}  # still running


def test_redirect_download_goes_to_the_storage_host_without_a_key(make_fake_rebyte):
    server = make_fake_rebyte(artifact_download="redirect")
    server.add_artifact("ws-r", "dir/data.bin", size=300_000)
    path = "/workspaces/ws-r/artifacts/dir%2Fdata.bin"
    response = call(server, "GET", path, allow_redirects=False)
    assert response.status_code == 302 and not response.content
    location = response.headers["Location"]
    assert location.startswith(server.upload_base_url + "/")
    assert KEY not in location
    fetched = requests.get(location, timeout=TIMEOUT)  # no key: the storage host needs none
    assert fetched.status_code == 200
    assert fetched.content == server.artifact_bytes("ws-r", "dir/data.bin")
    assert fetched.headers["Content-Length"] == "300000"
    storage = server.requests("GET", None, listener="upload")
    assert storage and all(
        name.lower() not in ("api_key", "api-key", "x-api-key")
        for entry in storage
        for name in entry["headers"]
    )
    tampered = location.replace("signature=", "signature=0")
    assert requests.get(tampered, timeout=TIMEOUT).status_code == 403
    other = location.replace("dir%2Fdata.bin", "other.bin")
    assert requests.get(other, timeout=TIMEOUT).status_code == 403
    server.configure(artifact_download="direct")
    assert call(server, "GET", path, allow_redirects=False).status_code == 200


def test_multipart_upload(fake_rebyte):
    task = create_task(fake_rebyte)
    base = f"/workspaces/{task['workspaceId']}/artifacts"
    binary = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"
    response = call(
        fake_rebyte,
        "POST",
        base,
        files=[
            ("file", ("notes.txt", b"line one\r\nline two\n", "text/plain")),
            ("file", ("nested/blob.bin", binary)),
            ("comment", (None, b"ignored")),
        ],
    )
    assert response.status_code == 201, response.text
    made = response.json()["data"]
    assert [entry["filename"] for entry in made] == ["notes.txt", "nested/blob.bin"]
    assert made[1]["size"] == len(binary)
    workspace = task["workspaceId"]
    assert fake_rebyte.artifact_bytes(workspace, "notes.txt") == b"line one\r\nline two\n"
    assert fake_rebyte.artifact_bytes(workspace, "nested/blob.bin") == binary
    response = call(fake_rebyte, "GET", f"{base}/nested%2Fblob.bin")
    assert response.content == binary
    too_big = call(fake_rebyte, "POST", base, files=[("file", ("huge.bin", b"\0" * (8 * MIB + 1)))])
    assert_error(too_big, 413, "payload_too_large")
    assert_error(call(fake_rebyte, "POST", base, json={"file": "x"}), 400, "validation_error")
    no_file = call(fake_rebyte, "POST", base, files=[("other", ("a.txt", b"a"))])
    assert_error(no_file, 400, "validation_error")
    assert fake_rebyte.artifact_names(workspace) == ["nested/blob.bin", "notes.txt"]
    response = call(fake_rebyte, "POST", base, files=[("file", ('ünï "q".md', b"u"))])
    assert response.json()["data"][0]["filename"] == 'ünï "q".md'
    encoded = (
        b'--BB\r\nContent-Disposition: form-data; name="file"; '
        b"filename*=UTF-8''%C3%BC.txt\r\n\r\nabc\r\n--BB--\r\n"
    )
    response = call(
        fake_rebyte,
        "POST",
        base,
        data=encoded,
        headers={"Content-Type": "multipart/form-data; boundary=BB"},
    )
    assert response.json()["data"][0]["filename"] == "ü.txt"
    assert fake_rebyte.artifact_bytes(workspace, "ü.txt") == b"abc"


def test_upload_url_then_put(fake_rebyte):
    task = create_task(fake_rebyte)
    workspace = task["workspaceId"]
    base = f"/workspaces/{workspace}/artifacts"
    response = call(
        fake_rebyte,
        "POST",
        f"{base}/upload-url",
        json={"filename": "big.csv", "contentType": "text/csv"},
    )
    assert response.status_code == 201, response.text
    slot = response.json()
    assert set(slot) == {"uploadUrl", "filename", "expiresAt"} and slot["filename"] == "big.csv"
    assert slot["uploadUrl"].startswith(fake_rebyte.upload_base_url + "/")
    wrong = requests.put(
        slot["uploadUrl"], data=b"a,b\n", timeout=TIMEOUT, headers={"Content-Type": "text/plain"}
    )
    assert wrong.status_code == 403
    body = b"a,b\n" * 50_000
    put = requests.put(
        slot["uploadUrl"], data=body, timeout=TIMEOUT, headers={"Content-Type": "text/csv"}
    )
    assert put.status_code == 200, put.text
    assert fake_rebyte.artifact_bytes(workspace, "big.csv") == body
    entry = next(
        item
        for item in list_artifacts(fake_rebyte, workspace)["data"]
        if item["filename"] == "big.csv"
    )
    assert (entry["size"], entry["contentType"]) == (len(body), "text/csv")
    assert call(fake_rebyte, "GET", f"{base}/big.csv").content == body
    for bad in (
        {},
        {"filename": ""},
        {"filename": 5},
        {"filename": "a" * 256},
        {"filename": "a", "contentType": ""},
    ):
        assert_error(
            call(fake_rebyte, "POST", f"{base}/upload-url", json=bad), 400, "validation_error"
        )
    forged = slot["uploadUrl"].replace("signature=", "signature=0")
    assert requests.put(forged, data=b"x", timeout=TIMEOUT).status_code == 403


def test_artifact_deletes(fake_rebyte):
    fake_rebyte.add_artifact("ws-d", "a.txt", data=b"a")
    fake_rebyte.add_artifact("ws-d", "b/c.txt", data=b"c")
    assert call(fake_rebyte, "DELETE", "/workspaces/ws-d/artifacts/b%2Fc.txt").status_code == 204
    assert fake_rebyte.artifact_names("ws-d") == ["a.txt"]
    response = call(fake_rebyte, "DELETE", "/workspaces/ws-d/artifacts/b%2Fc.txt")
    assert_error(response, 404, "not_found")
    assert call(fake_rebyte, "DELETE", "/workspaces/ws-d/artifacts").status_code == 204
    assert list_artifacts(fake_rebyte, "ws-d") == {"data": []}
    assert call(fake_rebyte, "DELETE", "/workspaces/ws-d/artifacts").status_code == 204


def test_deleted_artifacts_of_a_prompt_do_not_come_back(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.1)
    task = finished_task(server)
    base = f"/workspaces/{task['workspaceId']}/artifacts"
    assert call(server, "DELETE", base).status_code == 204
    assert list_artifacts(server, task["workspaceId"]) == {"data": []}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_1_gib_artifact_is_served_in_constant_memory():
    process, base_url = _start_cli(
        "--prompt-duration",
        "0.1",
        "--artifact-bytes",
        str(1024 * MIB),
        "--artifact-download",
        "redirect",
    )
    try:
        server = type("Cli", (), {"base_url": base_url})
        task = finished_task(server)
        path = f"/workspaces/{task['workspaceId']}/artifacts/output-1.bin"
        before = _peak_memory_kib(process.pid)
        received = 0
        with call(server, "GET", path, stream=True, timeout=60) as response:
            assert response.status_code == 200 and response.history  # redirected
            assert response.headers["Content-Length"] == str(1024 * MIB)
            for piece in response.iter_content(MIB):
                received += len(piece)
        assert received == 1024 * MIB
        growth_mib = (_peak_memory_kib(process.pid) - before) / 1024
        assert growth_mib < 48, f"the server's peak memory grew {growth_mib:.0f} MiB"
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---- webhooks ------------------------------------------------------------------------------


def add_webhook(server: FakeRebyte, url: str, **fields) -> requests.Response:
    body = {"url": url, "events": ["task.completed"], **fields}
    return call(server, "POST", "/webhooks", json=body)


def test_same_webhook_url_again_makes_a_second_one_by_default(fake_rebyte):
    first = add_webhook(fake_rebyte, "https://example.com/same")
    second = add_webhook(fake_rebyte, "https://example.com/same", events=["task.failed"])
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["events"] == ["task.failed"]
    listed = call(fake_rebyte, "GET", "/webhooks").json()["data"]
    assert [hook["url"] for hook in listed] == ["https://example.com/same"] * 2
    assert add_webhook(fake_rebyte, "https://example.com/same").status_code == 201
    fourth = add_webhook(fake_rebyte, "https://example.com/same")  # each counted
    assert_error(fourth, 400, "limit_exceeded")


def test_webhook_limit_same_url_and_secret(make_fake_rebyte):
    fake_rebyte = make_fake_rebyte(webhook_dedupe=True)
    secret = "whsec-do-not-echo-0123"
    made = []
    for number in range(3):
        response = add_webhook(
            fake_rebyte,
            f"https://example.com/h{number}",
            secret=secret,
            description=f"hook {number}",
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
        assert secret not in response.text
    hook = made[0]
    assert set(hook) == {
        "id",
        "url",
        "events",
        "description",
        "hasSecret",
        "isActive",
        "createdAt",
        "lastTriggeredAt",
        "failureCount",
    }
    assert (hook["hasSecret"], hook["isActive"], hook["lastTriggeredAt"], hook["failureCount"]) == (
        True,
        True,
        None,
        0,
    )
    assert fake_rebyte.webhook_secret(hook["id"]) == secret
    again = add_webhook(fake_rebyte, "https://example.com/h0", events=["task.failed"])
    assert again.status_code == 200 and again.json() == hook
    fourth = add_webhook(fake_rebyte, "https://example.com/h3")
    assert assert_error(fourth, 400, "limit_exceeded")["error"]["message"] == (
        "at most 3 webhooks per organization"
    )
    for path in ("/webhooks", f"/webhooks/{hook['id']}"):
        assert secret not in call(fake_rebyte, "GET", path).text
    assert call(fake_rebyte, "DELETE", f"/webhooks/{made[1]['id']}").status_code == 204
    assert_error(call(fake_rebyte, "GET", f"/webhooks/{made[1]['id']}"), 404, "not_found")
    assert add_webhook(fake_rebyte, "https://example.com/h3").status_code == 201
    plain = call(fake_rebyte, "GET", "/webhooks").json()["data"]
    assert [item["url"] for item in plain] == [
        "https://example.com/h0",
        "https://example.com/h2",
        "https://example.com/h3",
    ]
    assert plain[2]["hasSecret"] is False
    assert fake_rebyte.webhook_secret(plain[2]["id"]) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["task.completed"]}, "url"),
        ({"url": "http://example.com/h", "events": ["task.completed"]}, "url"),
        ({"url": "ftp://example.com/h", "events": ["task.completed"]}, "url"),
        ({"url": 5, "events": ["task.completed"]}, "url"),
        ({"url": "https://example.com/h"}, "events"),
        ({"url": "https://example.com/h", "events": []}, "events"),
        ({"url": "https://example.com/h", "events": "task.completed"}, "events"),
        ({"url": "https://example.com/h", "events": ["task.deleted"]}, "task.deleted"),
        (
            {"url": "https://example.com/h", "events": ["task.failed"], "secret": "s" * 501},
            "secret",
        ),
        (
            {"url": "https://example.com/h", "events": ["task.failed"], "description": 5},
            "description",
        ),
    ],
)
def test_webhook_validation(fake_rebyte, body, field):
    response = call(fake_rebyte, "POST", "/webhooks", json=body)
    assert field in assert_error(response, 400, "validation_error")["error"]["message"]


def test_webhook_list_wrapper_and_public_key_route(make_fake_rebyte):
    server = make_fake_rebyte(webhooks_wrapper="webhooks")
    assert add_webhook(server, "https://example.com/h").status_code == 201
    assert len(call(server, "GET", "/webhooks").json()["webhooks"]) == 1
    key = call(server, "GET", "/webhooks/public_key")
    assert key.status_code == 200, key.text
    assert key.json()["algorithm"] == "ed25519"
    pem = key.json()["publicKey"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.rstrip().endswith("-----END PUBLIC KEY-----")
    der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
    assert len(der) == 44 and der.startswith(bytes.fromhex("302a300506032b6570032100"))
    assert_error(call(server, "DELETE", "/webhooks/public_key"), 404, "not_found")
    assert_error(call(server, "GET", "/webhooks/nope"), 404, "not_found")


def test_command_line_knobs_for_computers_artifacts_and_webhooks():
    process, base_url = _start_cli(
        "--computer-ready-delay",
        "0",
        "--prompt-duration",
        "0.1",
        "--artifact-bytes",
        "7",
        "--artifacts-wrapper",
        "artifacts",
        "--artifact-name-field",
        "name",
        "--artifact-download",
        "redirect",
        "--webhooks-wrapper",
        "webhooks",
    )
    try:
        server = type("Cli", (), {"base_url": base_url})
        computer = create_computer(server)
        assert get_computer(server, computer["id"])["status"] == "ready"
        task = create_task(server, "p", workspaceId=computer["id"])
        wait_prompt(server, task["id"], "succeeded")
        entries = list_artifacts(server, computer["id"])["artifacts"]
        assert {entry["name"]: entry["size"] for entry in entries}["output-1.bin"] == 7
        response = call(
            server,
            "GET",
            f"/workspaces/{computer['id']}/artifacts/output-1.bin",
            allow_redirects=False,
        )
        assert response.status_code == 302
        assert add_webhook(server, "https://example.com/h").status_code == 201
        assert "webhooks" in call(server, "GET", "/webhooks").json()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("download", ["direct", "redirect"])
def test_short_body_fault_cuts_a_download_half_way(make_fake_rebyte, download):
    server = make_fake_rebyte(artifact_download=download)
    server.add_artifact("ws-cut", "data.bin", size=1_000_000)
    route = r"/v1/workspaces/.*" if download == "direct" else r"/artifacts/.*"
    server.inject("GET", route, "short-body")
    path = "/workspaces/ws-cut/artifacts/data.bin"
    with call(server, "GET", path, stream=True) as response:
        assert response.headers["Content-Length"] == "1000000"
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            b"".join(response.iter_content(65536))
    again = call(server, "GET", path)
    assert again.content == server.artifact_bytes("ws-cut", "data.bin")


def test_replaced_and_deleted_uploads_leave_no_file(fake_rebyte):
    base = "/workspaces/ws-up/artifacts"
    fake_rebyte.add_artifact("ws-up", "seed.txt", data=b"x")
    for body in (b"first", b"second"):
        slot = call(fake_rebyte, "POST", f"{base}/upload-url", json={"filename": "f.bin"}).json()
        assert requests.put(slot["uploadUrl"], data=body, timeout=TIMEOUT).status_code == 200
    assert fake_rebyte.artifact_bytes("ws-up", "f.bin") == b"second"
    folder = fake_rebyte._artifact_dir.name
    assert len(os.listdir(folder)) == 1
    assert call(fake_rebyte, "DELETE", f"{base}/f.bin").status_code == 204
    assert os.listdir(folder) == []


# ---- shape knobs and real-service habits ---------------------------------------------------


def content_of(server: FakeRebyte, task_id: str, **params) -> dict:
    response = call(server, "GET", f"/tasks/{task_id}/content", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_done_status_words_knob(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.1, done_status_words="task")
    assert stream_events(server, create_task(server)["id"]).done["status"] == "completed"
    assert stream_events(server, create_task(server, "x [fail]")["id"]).done["status"] == ("failed")
    server.configure(events_early_done=True)
    early = stream_events(server, create_task(server, "late [duration=3]")["id"])
    assert early.done == {"status": "running", "lastSeq": -1, "finalResult": None}
    server.configure(done_status_words="prompt", events_early_done=False)
    assert stream_events(server, create_task(server)["id"]).done["status"] == "succeeded"


def test_task_read_lag_keeps_reads_running_while_events_say_done(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.2, task_read_lag=1.5)
    task_id = create_task(server, "Lagging")["id"]
    done = stream_events(server, task_id).done
    assert done == {"status": "succeeded", "lastSeq": 5, "finalResult": final_result_for("Lagging")}
    task = get_task(server, task_id)
    assert (task["status"], task["completedAt"], task["finalResult"]) == ("running", None, None)
    assert (task["prompts"][0]["status"], task["prompts"][0]["completedAt"]) == ("running", None)
    (entry,) = content_of(server, task_id)["prompts"]
    assert (entry["status"], entry["response"], entry["completedAt"]) == ("running", None, None)
    assert call(server, "GET", "/tasks").json()["data"][0]["completedAt"] is None
    task = wait_for(
        lambda: (lambda t: t if t["status"] == "completed" else None)(get_task(server, task_id)),
        timeout=5,
    )
    assert task["finalResult"] == final_result_for("Lagging")
    assert content_of(server, task_id)["prompts"][0]["response"] == task["finalResult"]


def test_events_route_off_is_404_for_a_task_that_exists(make_fake_rebyte):
    server = make_fake_rebyte(events_route=False)
    task_id = create_task(server)["id"]
    assert get_task(server, task_id)["id"] == task_id
    assert_error(call(server, "GET", f"/tasks/{task_id}/events"), 404, "not_found")
    server.configure(events_route=True)
    assert stream_events(server, task_id).done is not None


def test_silent_prompt_has_no_events_and_no_answer(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.2)
    created = create_task(server, "What is 2+2? [silent]")
    assert created["status"] == "running"
    for _ in range(2):  # every connection, at once
        stream = stream_events(server, created["id"])
        assert stream.messages == [
            ("done", {"status": "succeeded", "lastSeq": -1, "finalResult": ""})
        ]
    task = get_task(server, created["id"])
    assert (task["status"], task["finalResult"], task["title"]) == ("completed", "", "What is 2+2?")
    assert task["prompts"][0]["status"] == "succeeded"
    (entry,) = content_of(server, created["id"], include="events")["prompts"]
    assert (entry["status"], entry["response"], entry["events"]) == ("succeeded", None, [])
    assert list_artifacts(server, created["workspaceId"]) == {"data": []}
    # With a duration it stays quiet (keep-alives only) until it ends.
    server.configure(keepalive_interval=0.05)
    slow = create_task(server, "Hm [silent] [duration=0.5]")["id"]
    stream = stream_events(server, slow)
    assert stream.events == [] and stream.comments
    assert stream.done == {"status": "succeeded", "lastSeq": -1, "finalResult": ""}


def test_final_result_delay(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.2, final_result_delay=1.5)
    task_id = create_task(server, "Delayed")["id"]
    done = stream_events(server, task_id).done
    assert done == {"status": "succeeded", "lastSeq": 5, "finalResult": None}
    task = get_task(server, task_id)
    assert task["status"] == "completed" and task["completedAt"] is not None
    assert task["finalResult"] is None
    assert content_of(server, task_id)["prompts"][0]["response"] is None
    task = wait_for(
        lambda: (lambda t: t if t["finalResult"] else None)(get_task(server, task_id)), timeout=5
    )
    assert task["finalResult"] == final_result_for("Delayed")
    assert content_of(server, task_id)["prompts"][0]["response"] == final_result_for("Delayed")


def test_empty_final_result_leaves_the_answer_on_content_only(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.1, empty_final_result=True)
    task_id = create_task(server, "Hidden")["id"]
    assert stream_events(server, task_id).done["finalResult"] == ""
    task = wait_prompt(server, task_id, "succeeded")
    assert task["finalResult"] == ""
    assert content_of(server, task_id)["prompts"][0]["response"] == final_result_for("Hidden")
    failed = create_task(server, "x [fail]")["id"]
    assert wait_prompt(server, failed, "failed")["finalResult"] is None


def test_content_prompt_ids_knob(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.1)
    task_id = create_task(server)["id"]
    assert (
        content_of(server, task_id)["prompts"][0]["id"]
        == get_task(server, task_id)["prompts"][0]["id"]
    )
    server.configure(content_prompt_ids=False)
    (entry,) = content_of(server, task_id, include="events")["prompts"]
    assert set(entry) == {
        "status",
        "userPrompt",
        "response",
        "submittedAt",
        "completedAt",
        "events",
    }


def test_service_executor_and_model_override_the_request(make_fake_rebyte):
    server = make_fake_rebyte(service_executor="opencode", service_model="gemini-3.1-pro")
    task_id = create_task(server, "p", executor="codex", model="gpt-5.4")["id"]
    task = get_task(server, task_id)
    assert (task["executor"], task["model"]) == ("opencode", "gemini-3.1-pro")
    row = call(server, "GET", "/tasks").json()["data"][0]
    assert (row["executor"], row["model"]) == ("opencode", "gemini-3.1-pro")
    init = stream_events(server, task_id).events[0]
    assert init["payload"]["executor"] == "opencode"
    server.configure(service_executor=None, service_model=None)
    echoed = get_task(server, create_task(server, "p", executor="codex", model="x")["id"])
    assert (echoed["executor"], echoed["model"]) == ("codex", "x")


def test_submitted_equals_completed_from_the_start(make_fake_rebyte):
    server = make_fake_rebyte(submitted_equals_completed=True)
    task_id = create_task(server, "Long [duration=5]")["id"]
    task = get_task(server, task_id)
    (prompt,) = task["prompts"]
    assert prompt["status"] == "pending" and prompt["completedAt"] == prompt["submittedAt"]
    assert task["status"] == "running" and task["completedAt"] is None
    (entry,) = content_of(server, task_id)["prompts"]
    assert entry["completedAt"] == entry["submittedAt"]
    call(server, "POST", f"/tasks/{task_id}/cancel")


@pytest.mark.parametrize(
    ("shape", "status", "body"),
    [("status", 200, "status"), ("empty", 200, {}), ("ok", 200, {"ok": True}), ("204", 204, None)],
)
def test_cancel_answer_shapes(make_fake_rebyte, shape, status, body):
    server = make_fake_rebyte(cancel_answer=shape)
    task_id = create_task(server, "Long [duration=5]")["id"]
    response = call(server, "POST", f"/tasks/{task_id}/cancel")
    assert response.status_code == status
    if body is None:
        assert response.content == b"" and "Content-Type" not in response.headers
    else:
        expected = {"id": task_id, "status": "canceled"} if body == "status" else body
        assert response.json() == expected
    assert get_task(server, task_id)["status"] == "canceled"


@pytest.mark.parametrize("wrapper", ["data", "artifacts", "bare"])
def test_artifact_upload_wrapper_knob(make_fake_rebyte, wrapper):
    server = make_fake_rebyte(artifact_upload_wrapper=wrapper)
    server.add_artifact("ws-w", "seed.txt", data=b"s")
    response = call(
        server, "POST", "/workspaces/ws-w/artifacts", files=[("file", ("a.txt", b"abc"))]
    )
    assert response.status_code == 201
    made = response.json() if wrapper == "bare" else response.json()[wrapper]
    assert isinstance(made, list) and made[0]["filename"] == "a.txt"
    if wrapper != "bare":
        assert set(response.json()) == {wrapper}


def test_upload_url_and_public_key_field_knobs(make_fake_rebyte):
    server = make_fake_rebyte(upload_url_field="url", public_key_field="key")
    server.add_artifact("ws-u", "seed.txt", data=b"s")
    slot = call(
        server, "POST", "/workspaces/ws-u/artifacts/upload-url", json={"filename": "b.bin"}
    ).json()
    assert set(slot) == {"url", "filename", "expiresAt"}
    assert requests.put(slot["url"], data=b"bytes", timeout=TIMEOUT).status_code == 200
    assert server.artifact_bytes("ws-u", "b.bin") == b"bytes"
    key = call(server, "GET", "/webhooks/public_key").json()
    assert set(key) == {"key", "algorithm"} and "BEGIN PUBLIC KEY" in key["key"]


def _objects(value):
    """Every JSON object in a parsed value, nested ones included."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def test_unknown_field_knob_marks_every_json_object(make_fake_rebyte):
    server = make_fake_rebyte(prompt_duration=0.1, unknown_field=True)
    created = create_task(server)
    stream = stream_events(server, created["id"])
    answers = [
        created,
        get_task(server, created["id"]),
        call(server, "GET", "/tasks").json(),
        content_of(server, created["id"], include="events"),
        call(server, "GET", "/tasks/nope").json(),
        call(server, "GET", "/tasks", key="rbk_wrong").json(),
        *[data for _, data in stream.messages],
    ]
    objects = [item for answer in answers for item in _objects(answer)]
    assert len(objects) > 30 and all(item.get("x_unknown") == 1 for item in objects)
    server.configure(unknown_field=False)
    answers = [
        get_task(server, created["id"]),
        *[d for _, d in stream_events(server, created["id"]).messages],
    ]
    assert not any("x_unknown" in item for answer in answers for item in _objects(answer))


def test_new_knob_values_are_checked(fake_rebyte):
    for knob, value in [
        ("done_status_words", "words"),
        ("cancel_answer", "200"),
        ("artifact_upload_wrapper", "files"),
        ("upload_url_field", "href"),
        ("public_key_field", "pem"),
        ("task_read_lag", -1),
        ("final_result_delay", float("nan")),
        ("task_view_extras", "yes"),
        ("events_route", 0),
        ("service_executor", ""),
        ("service_model", 5),
    ]:
        with pytest.raises(ValueError):
            fake_rebyte.configure(**{knob: value})


def test_command_line_has_each_shape_knob_with_the_constructor_default():
    import inspect

    from fake_rebyte import _CLI_SHAPE_KNOBS, _parse_args

    parameters = inspect.signature(FakeRebyte).parameters
    defaults = vars(_parse_args([]))
    for name, default in _CLI_SHAPE_KNOBS.items():
        assert parameters[name].default == default == defaults[name], name
    flipped = vars(
        _parse_args(
            [
                "--task-view-extras",
                "--list-status",
                "--done-status-words",
                "task",
                "--task-read-lag",
                "2",
                "--no-events-route",
                "--final-result-delay",
                "1.5",
                "--empty-final-result",
                "--no-content-prompt-ids",
                "--service-executor",
                "codex",
                "--service-model",
                "gpt-5.4",
                "--submitted-equals-completed",
                "--webhook-dedupe",
                "--cancel-answer",
                "204",
                "--artifact-upload-wrapper",
                "bare",
                "--upload-url-field",
                "url",
                "--public-key-field",
                "key",
                "--unknown-field",
            ]
        )
    )
    assert all(flipped[name] != default for name, default in _CLI_SHAPE_KNOBS.items())


def test_command_line_shape_knobs_reach_the_server():
    process, base_url = _start_cli(
        "--prompt-duration",
        "0.1",
        "--task-view-extras",
        "--no-events-route",
        "--cancel-answer",
        "ok",
        "--done-status-words",
        "task",
    )
    try:
        server = type("Cli", (), {"base_url": base_url})
        task = create_task(server)
        assert get_task(server, task["id"])["workspaceId"] == task["workspaceId"]
        assert_error(call(server, "GET", f"/tasks/{task['id']}/events"), 404, "not_found")
        assert call(server, "POST", f"/tasks/{task['id']}/cancel").json() == {"ok": True}
    finally:
        process.terminate()
        process.wait(timeout=10)
