"""Unit tests of scripts/rebyte_client.py against requests-mock: no network, no real sleeping.

Every client here gets a recording `_sleep` and a fake `_clock` (see `FakeClock`), so
retries and waits are checked by the pauses they ask for, not by waiting.
"""

from __future__ import annotations

import email.utils
import http.server
import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import urllib3
from requests_mock import ANY

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import rebyte.netio  # noqa: E402
import rebyte.retries  # noqa: E402
import rebyte_client  # noqa: E402
from rebyte_client import (  # noqa: E402
    API_KEY_URL,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    InputError,
    MalformedResponseError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    RebyteClient,
    RebyteError,
    ServerError,
    UploadError,
    ValidationError,
    WaitTimeoutError,
    normalize_github_repo,
)

KEY = "rbk_secret_test_key_123"
BASE = "https://api.example.test/v1"
SIGNATURE = "deadbeefsignature0042"
STORAGE = (
    "https://storage.example.test/bucket/uploads/file_1"
    f"?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature={SIGNATURE}"
)
CREATED = {
    "id": "t1",
    "workspaceId": "ws1",
    "url": "https://app.rebyte.ai/run/t1",
    "status": "running",
    "createdAt": "2025-01-01T00:00:00Z",
}
JSON_ERROR_HEADERS = {"Content-Type": "application/json", "X-Request-Id": "req_abc123"}


# ----------------------------------------------------------------------------- helpers


class FakeClock:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(clock=None, **kwargs) -> RebyteClient:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("base_url", BASE)
    client = RebyteClient(**kwargs)
    clock = clock or FakeClock()
    client._sleep = clock.sleep
    client._clock = clock
    return client


def api_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def task(status: str, prompts=(), **extra) -> dict:
    return {
        "id": "t1",
        "url": "https://app.rebyte.ai/run/t1",
        "status": status,
        "prompts": [{"id": pid, "status": pstatus} for pid, pstatus in prompts],
        **extra,
    }


def url_path(request) -> str:
    """The path exactly as sent (requests_mock's `.path` is lower-cased)."""
    return urllib.parse.urlsplit(request.url).path


def header_names(request) -> set:
    return {name.lower() for name in request.headers}


@pytest.fixture(autouse=True)
def _no_rebyte_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("REBYTE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock):
    client = make_client(clock)
    yield client
    client.close()


@pytest.fixture
def catch_all(requests_mock):
    """Answer every request, so a test can prove that none was made."""
    requests_mock.register_uri(ANY, ANY, json={})
    return requests_mock


# ------------------------------------------------------------------------ endpoints


def test_create_task_sends_only_the_prompt_when_nothing_else_is_given(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks", status_code=201, json=CREATED)
    assert client.tasks.create("Add unit tests") == CREATED
    (req,) = requests_mock.request_history
    assert req.method == "POST"
    assert req.url == f"{BASE}/tasks"
    assert req.headers["API_KEY"] == KEY
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Accept"] == "application/json"
    assert req.json() == {"prompt": "Add unit tests"}


def test_create_task_sends_every_given_field_under_its_api_name(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks", status_code=201, json=CREATED)
    client.tasks.create(
        "Analyse the data",
        executor="claude",
        model="lite",
        skills=("deep-research", "pdf"),
        files=[{"id": "file_1", "filename": "data-550e.csv", "uploadUrl": "dropped"}],
        github_url="https://github.com/acme/widgets.git",
        branch_name="dev",
        workspace_id="ws1",
    )
    assert requests_mock.last_request.json() == {
        "prompt": "Analyse the data",
        "executor": "claude",
        "model": "lite",
        "skills": ["deep-research", "pdf"],
        "files": [{"id": "file_1", "filename": "data-550e.csv"}],
        "githubUrl": "acme/widgets",
        "branchName": "dev",
        "workspaceId": "ws1",
    }


@pytest.mark.parametrize(
    "given, sent",
    [
        ("acme/widgets", "acme/widgets"),
        (" acme/widgets ", "acme/widgets"),
        ("https://github.com/acme/widgets", "acme/widgets"),
        ("http://www.github.com/acme/widgets.git/", "acme/widgets"),
        ("github.com/acme/my.site.github.io", "acme/my.site.github.io"),
    ],
)
def test_create_task_normalises_the_github_repository(client, requests_mock, given, sent):
    requests_mock.post(f"{BASE}/tasks", status_code=201, json=CREATED)
    client.tasks.create("p", github_url=given)
    assert requests_mock.last_request.json()["githubUrl"] == sent


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "acme",
        "https://gitlab.com/acme/widgets",
        "acme/widgets/tree/main",
        "acme/..",
        "-acme/widgets",
        42,
    ],
)
def test_normalize_github_repo_refuses_what_is_not_a_repository(bad):
    with pytest.raises(InputError):
        normalize_github_repo(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"executor": ""},
        {"model": "   "},
        {"skills": "pdf"},
        {"skills": ["pdf", ""]},
        {"skills": [3]},
        {"files": "file_1"},
        {"files": [{"id": "file_1"}]},
        {"files": [{"id": "", "filename": "a.csv"}]},
        {"github_url": "not a repo"},
        {"branch_name": " "},
        {"workspace_id": 5},
    ],
)
def test_create_task_validates_its_fields_before_sending(client, catch_all, kwargs):
    with pytest.raises(InputError):
        client.tasks.create("p", **kwargs)
    assert not catch_all.called


def test_create_task_uses_the_long_create_timeout(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks", status_code=201, json=CREATED)
    client.tasks.create("p")
    assert requests_mock.last_request.timeout == (10.0, 600.0)


def test_get_task(client, requests_mock):
    body = task("completed", [("p1", "succeeded")], finalResult="done")
    requests_mock.get(f"{BASE}/tasks/t1", json=body)
    assert client.tasks.get("t1") == body
    (req,) = requests_mock.request_history
    assert req.method == "GET"
    assert req.url == f"{BASE}/tasks/t1"
    assert req.headers["API_KEY"] == KEY
    assert "content-type" not in header_names(req)
    assert req.body is None
    assert req.timeout == (10.0, 60.0)


def test_get_task_without_an_id_is_malformed(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json={"status": "running"})
    with pytest.raises(MalformedResponseError):
        client.tasks.get("t1")


def test_list_tasks_defaults(client, requests_mock):
    page = {"data": [{"id": "t2"}, {"id": "t1"}], "total": 2, "limit": 50, "offset": 0}
    requests_mock.get(f"{BASE}/tasks", json=page)
    assert client.tasks.list() == page
    req = requests_mock.last_request
    assert req.method == "GET"
    assert url_path(req) == "/v1/tasks"
    assert req.qs == {"limit": ["50"], "offset": ["0"]}
    assert req.headers["API_KEY"] == KEY


def test_list_tasks_sends_limit_and_offset(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks", json={"data": [], "total": 0})
    client.tasks.list(limit=100, offset=200)
    assert requests_mock.last_request.qs == {"limit": ["100"], "offset": ["200"]}


@pytest.mark.parametrize("body", [{"total": 0}, {"data": {"id": "t1"}}, [{"id": "t1"}]])
def test_list_tasks_refuses_a_page_without_a_data_list(client, requests_mock, body):
    requests_mock.get(f"{BASE}/tasks", json=body)
    with pytest.raises(MalformedResponseError):
        client.tasks.list()


def _pages(requests_mock, answer):
    """Serve GET /tasks from answer(limit, offset) -> page dict; return the offsets asked."""
    asked = []

    def respond(request, context):
        limit, offset = int(request.qs["limit"][0]), int(request.qs["offset"][0])
        asked.append((limit, offset))
        return answer(limit, offset)

    requests_mock.get(f"{BASE}/tasks", json=respond)
    return asked


def test_iter_tasks_pages_until_a_short_page(client, requests_mock):
    ids = [f"t{i}" for i in range(7)]
    asked = _pages(
        requests_mock,
        lambda limit, offset: {"data": [{"id": i} for i in ids[offset : offset + limit]]},
    )
    assert [t["id"] for t in client.tasks.iter(page_size=3)] == ids
    assert asked == [(3, 0), (3, 3), (3, 6)]


def test_iter_tasks_stops_at_total_without_asking_for_an_empty_page(client, requests_mock):
    ids = [f"t{i}" for i in range(4)]
    asked = _pages(
        requests_mock,
        lambda limit, offset: {
            "data": [{"id": i} for i in ids[offset : offset + limit]],
            "total": len(ids),
        },
    )
    assert [t["id"] for t in client.tasks.iter(page_size=2)] == ids
    assert asked == [(2, 0), (2, 2)]


def test_iter_tasks_does_not_repeat_a_task_that_shifted_to_the_next_page(client, requests_mock):
    before = ["a", "b", "c", "d", "e"]
    after = ["new", "a", "b", "c", "d", "e"]  # a task created while we page

    def answer(limit, offset):
        ids = before if offset == 0 else after
        return {"data": [{"id": i} for i in ids[offset : offset + limit]], "total": len(ids)}

    asked = _pages(requests_mock, answer)
    assert [t["id"] for t in client.tasks.iter(page_size=2)] == ["a", "b", "c", "d", "e"]
    assert asked == [(2, 0), (2, 2), (2, 4)]


@pytest.mark.parametrize("page_size", [0, 101, "5", True])
def test_iter_tasks_validates_page_size(client, catch_all, page_size):
    with pytest.raises(InputError):
        next(client.tasks.iter(page_size=page_size))
    assert not catch_all.called


def test_follow_up(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks/t1/prompts", status_code=201, json={"promptId": "p2"})
    assert client.tasks.follow_up("t1", "Now the docs", skills=["pdf"]) == {"promptId": "p2"}
    (req,) = requests_mock.request_history
    assert req.method == "POST"
    assert req.url == f"{BASE}/tasks/t1/prompts"
    assert req.headers["API_KEY"] == KEY
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {"prompt": "Now the docs", "skills": ["pdf"]}
    assert req.timeout == (10.0, 600.0)  # may resume a stopped VM: the create timeout


def test_follow_up_sends_only_given_fields_and_files(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks/t1/prompts", status_code=201, json={"promptId": "p2"})
    client.tasks.follow_up("t1", "again")
    assert requests_mock.last_request.json() == {"prompt": "again"}
    client.tasks.follow_up("t1", "with a file", files=[{"id": "f1", "filename": "a-1.csv"}])
    assert requests_mock.last_request.json() == {
        "prompt": "with a file",
        "files": [{"id": "f1", "filename": "a-1.csv"}],
    }


@pytest.mark.parametrize("visibility", ["private", "shared", "public"])
def test_set_visibility(client, requests_mock, visibility):
    answer = {"visibility": visibility}
    if visibility == "public":
        answer["shareUrl"] = "https://app.rebyte.ai/share/t1"
    requests_mock.patch(f"{BASE}/tasks/t1/visibility", json=answer)
    assert client.tasks.set_visibility("t1", visibility) == answer
    (req,) = requests_mock.request_history
    assert req.method == "PATCH"
    assert req.url == f"{BASE}/tasks/t1/visibility"
    assert req.headers["API_KEY"] == KEY
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {"visibility": visibility}


@pytest.mark.parametrize("visibility", ["secret", "PUBLIC", "", None, 1])
def test_set_visibility_validates_before_sending(client, catch_all, visibility):
    with pytest.raises(InputError):
        client.tasks.set_visibility("t1", visibility)
    assert not catch_all.called


def test_delete_task(client, requests_mock):
    requests_mock.delete(f"{BASE}/tasks/t1", status_code=204)
    assert client.tasks.delete("t1") is None
    (req,) = requests_mock.request_history
    assert req.method == "DELETE"
    assert req.url == f"{BASE}/tasks/t1"
    assert req.headers["API_KEY"] == KEY
    assert req.body is None
    assert "content-type" not in header_names(req)


def test_delete_task_retry_that_finds_it_gone_counts_as_done(client, requests_mock, clock):
    requests_mock.delete(
        f"{BASE}/tasks/t1",
        [{"status_code": 503}, {"status_code": 404, "json": api_error("not_found", "gone")}],
    )
    assert client.tasks.delete("t1") is None
    assert requests_mock.call_count == 2
    assert len(clock.sleeps) == 1


def test_delete_task_after_a_dropped_connection_finding_404_counts_as_done(client, requests_mock):
    requests_mock.delete(
        f"{BASE}/tasks/t1",
        [{"exc": requests.exceptions.ConnectionError}, {"status_code": 404}],
    )
    assert client.tasks.delete("t1") is None
    assert requests_mock.call_count == 2


def test_delete_task_first_attempt_404_raises(client, requests_mock):
    requests_mock.delete(
        f"{BASE}/tasks/t1", status_code=404, json=api_error("not_found", "Task not found")
    )
    with pytest.raises(NotFoundError):
        client.tasks.delete("t1")
    assert requests_mock.call_count == 1


def test_cancel_task(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks/t1/cancel", json={"id": "t1", "status": "canceled"})
    assert client.tasks.cancel("t1") == {"id": "t1", "status": "canceled"}
    (req,) = requests_mock.request_history
    assert req.method == "POST"
    assert req.url == f"{BASE}/tasks/t1/cancel"
    assert req.headers["API_KEY"] == KEY
    assert req.body is None


def test_get_task_content(client, requests_mock):
    content = {"id": "t1", "prompts": [{"id": "p1", "userPrompt": "hi", "response": "hello"}]}
    requests_mock.get(f"{BASE}/tasks/t1/content", json=content)
    assert client.tasks.content("t1") == content
    req = requests_mock.last_request
    assert req.method == "GET"
    assert url_path(req) == "/v1/tasks/t1/content"
    assert req.qs == {}
    client.tasks.content("t1", include_events=True)
    assert requests_mock.last_request.qs == {"include": ["events"]}


def test_get_result_prefers_final_result(client, requests_mock):
    requests_mock.get(
        f"{BASE}/tasks/t1", json=task("completed", [("p1", "succeeded")], finalResult="42")
    )
    content = requests_mock.get(f"{BASE}/tasks/t1/content", json={"prompts": []})
    assert client.tasks.result("t1") == "42"
    assert client.tasks.result("t1", prompt_id="p1") == "42"
    assert not content.called


def test_get_result_falls_back_to_the_content_response(client, requests_mock):
    requests_mock.get(
        f"{BASE}/tasks/t1",
        json=task("completed", [("p1", "succeeded"), ("p2", "succeeded")], finalResult=None),
    )
    requests_mock.get(
        f"{BASE}/tasks/t1/content",
        json={
            "id": "t1",
            "prompts": [
                {"id": "p1", "status": "succeeded", "response": "first answer"},
                {"id": "p2", "status": "succeeded", "response": "second answer"},
            ],
        },
    )
    assert client.tasks.result("t1") == "second answer"


def test_get_result_by_prompt_id_reads_that_prompt(client, requests_mock):
    requests_mock.get(
        f"{BASE}/tasks/t1",
        json=task("completed", [("p1", "succeeded"), ("p2", "succeeded")], finalResult="latest"),
    )
    requests_mock.get(
        f"{BASE}/tasks/t1/content",
        json={
            "prompts": [
                {"id": "p1", "response": "first answer"},
                {"id": "p2", "response": "latest"},
            ]
        },
    )
    assert client.tasks.result("t1", prompt_id="p1") == "first answer"
    assert client.tasks.result("t1", prompt_id="p9") is None


def test_get_result_is_none_when_there_is_none(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task("running", [("p1", "running")]))
    requests_mock.get(f"{BASE}/tasks/t1/content", status_code=404)
    assert client.tasks.result("t1") is None


# --------------------------------------------------------------------------- upload


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "report.csv"
    content = bytes(range(256)) * (10 * 1024 + 7)  # 2.5 MiB and a bit: several chunks
    path.write_bytes(content)
    return path, content


def _slot(requests_mock, filename="report-550e.csv", url=STORAGE):
    return requests_mock.post(
        f"{BASE}/files",
        status_code=201,
        json={"id": "file_1", "filename": filename, "uploadUrl": url},
    )


def _storage(requests_mock, statuses=(200,), url=STORAGE):
    """Register the storage PUT; each attempt reads the streamed body as a transport would."""
    attempts = []

    def respond(request, context):
        body = request.body
        chunks = []
        while True:
            chunk = body.read(64 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
        attempts.append({"body_type": type(body), "chunks": chunks, "data": b"".join(chunks)})
        context.status_code = statuses[min(len(attempts), len(statuses)) - 1]
        return ""

    requests_mock.put(url, text=respond)
    return attempts


def test_upload_file_creates_a_slot_then_streams_the_file(client, requests_mock, data_file):
    path, content = data_file
    _slot(requests_mock)
    attempts = _storage(requests_mock)
    progress = []

    result = client.files.upload(path, progress=lambda sent, total: progress.append((sent, total)))

    assert result == {"id": "file_1", "filename": "report-550e.csv"}
    post, put = requests_mock.request_history
    assert post.method == "POST" and post.url == f"{BASE}/files"
    assert post.headers["API_KEY"] == KEY
    assert post.headers["Content-Type"] == "application/json"
    assert post.json() == {"filename": "report.csv", "contentType": "text/csv"}

    assert put.method == "PUT" and put.url == STORAGE
    assert not header_names(put) & {"api_key", "api-key", "x-api-key", "authorization"}
    assert KEY not in str(dict(put.headers))
    assert put.headers["Content-Length"] == str(len(content))
    assert put.headers["Content-Type"] == "text/csv"
    assert "transfer-encoding" not in header_names(put)
    assert put.timeout == (10.0, 60.0)

    # Streamed: the transport got a reader, never one bytes object, and read it in bounded chunks.
    (attempt,) = attempts
    # (the send path wraps the reader to time the answer after the body's last byte)
    assert attempt["body_type"] is rebyte.netio._TrackedReader
    assert attempt["data"] == content
    assert len(attempt["chunks"]) > 1
    assert max(len(c) for c in attempt["chunks"]) <= rebyte_client.UPLOAD_CHUNK_BYTES

    sent = [s for s, _ in progress]
    assert len(sent) > 1
    assert sent == sorted(set(sent))  # strictly increasing
    assert progress[-1] == (len(content), len(content))
    assert {total for _, total in progress} == {len(content)}


def test_upload_file_retried_put_sends_the_whole_file_again(
    client, requests_mock, data_file, clock
):
    path, content = data_file
    slot = _slot(requests_mock)
    attempts = _storage(requests_mock, statuses=(503, 200))
    progress = []
    client.files.upload(path, progress=lambda sent, total: progress.append(sent))
    assert slot.call_count == 1
    assert [a["data"] for a in attempts] == [content, content]
    assert len(clock.sleeps) == 1
    # The second attempt counts again from the first byte.
    restart = progress.index(len(content)) + 1
    assert progress[restart] < progress[restart - 1]
    assert progress[-1] == len(content)


def test_upload_file_expired_url_raises_upload_error(client, requests_mock, data_file):
    path, _ = data_file
    _slot(requests_mock)
    requests_mock.put(
        STORAGE,
        status_code=403,
        text="<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
        headers={"Content-Type": "application/xml"},
    )
    with pytest.raises(UploadError) as caught:
        client.files.upload(path)
    error = caught.value
    assert error.status == 403
    assert "expired" in str(error)
    assert SIGNATURE not in str(error)
    assert error.url == "https://storage.example.test/bucket/uploads/file_1"
    assert requests_mock.request_history[-1].method == "PUT"
    assert len(requests_mock.request_history) == 2  # a refused signature is not retried


def test_upload_file_redirect_from_storage_is_not_success(client, requests_mock, data_file):
    path, _ = data_file
    _slot(requests_mock)
    requests_mock.put(
        STORAGE, status_code=307, headers={"Location": "https://elsewhere.example.test/x"}
    )
    with pytest.raises(UploadError) as caught:
        client.files.upload(path)
    assert caught.value.status == 307


@pytest.mark.parametrize(
    "name, content_type",
    [
        ("notes.txt", "text/plain"),
        ("data.json", "application/json"),
        ("picture.png", "image/png"),
        ("archive.unknownext", "application/octet-stream"),
        ("Makefile", "application/octet-stream"),
    ],
)
def test_upload_file_guesses_content_type_from_the_name(
    client, requests_mock, tmp_path, name, content_type
):
    path = tmp_path / name
    path.write_bytes(b"x" * 10)
    _slot(requests_mock, filename=name)
    _storage(requests_mock)
    client.files.upload(str(path))
    post, put = requests_mock.request_history
    assert post.json() == {"filename": name, "contentType": content_type}
    assert put.headers["Content-Type"] == content_type


def test_upload_file_explicit_content_type_wins(client, requests_mock, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("# hi")
    _slot(requests_mock)
    _storage(requests_mock)
    client.files.upload(path, content_type="text/markdown")
    post, put = requests_mock.request_history
    assert post.json()["contentType"] == "text/markdown"
    assert put.headers["Content-Type"] == "text/markdown"


def test_upload_empty_file(client, requests_mock, tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    _slot(requests_mock)
    requests_mock.put(STORAGE, status_code=200)
    client.files.upload(path)
    put = requests_mock.last_request
    assert put.headers["Content-Length"] == "0"
    assert put.body in (b"", None)


def test_upload_slot_without_upload_url_is_malformed(client, requests_mock, data_file):
    path, _ = data_file
    requests_mock.post(f"{BASE}/files", status_code=201, json={"id": "f", "filename": "x"})
    with pytest.raises(MalformedResponseError):
        client.files.upload(path)


def test_upload_streams_over_a_real_socket_with_content_length(tmp_path):
    """requests-mock never touches urllib3: check once, on loopback, what really goes out."""
    content = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    received = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            received["slot_body"] = json.loads(self.rfile.read(length))
            received["slot_key"] = self.headers.get("API_KEY")
            port = self.server.server_address[1]
            body = json.dumps(
                {
                    "id": "file_1",
                    "filename": "big-1.bin",
                    "uploadUrl": f"http://127.0.0.1:{port}/upload/file_1?sig=abc",
                }
            ).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self):
            received["put_headers"] = dict(self.headers)
            length = int(self.headers["Content-Length"])
            received["put_body"] = self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with make_client(base_url=f"http://127.0.0.1:{port}/v1") as client:
            assert client.files.upload(path) == {"id": "file_1", "filename": "big-1.bin"}
    finally:
        server.shutdown()
        server.server_close()
    assert received["slot_key"] == KEY
    assert received["slot_body"] == {
        "filename": "big.bin",
        "contentType": "application/octet-stream",
    }
    headers = {k.lower(): v for k, v in received["put_headers"].items()}
    assert "api_key" not in headers
    assert "transfer-encoding" not in headers
    assert headers["content-length"] == str(len(content))
    assert received["put_body"] == content


def test_upload_validates_the_path_before_sending(client, catch_all, tmp_path):
    for bad in (tmp_path / "missing.csv", tmp_path, "", None, 42):
        with pytest.raises(InputError):
            client.files.upload(bad)
    assert not catch_all.called


def test_upload_refuses_an_unreadable_file(client, catch_all, tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text("a,b\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that read any file (root)")
        with pytest.raises(InputError, match="not readable"):
            client.files.upload(path)
    finally:
        path.chmod(0o600)
    assert not catch_all.called


def test_upload_refuses_an_unreadable_file_as_reported_by_access(
    client, catch_all, tmp_path, monkeypatch
):
    path = tmp_path / "secret.csv"
    path.write_text("a,b\n")
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: False if str(p) == str(path) else real_access(p, mode)
    )
    with pytest.raises(InputError, match="not readable"):
        client.files.upload(path)
    assert not catch_all.called


def test_upload_refuses_a_name_over_255_characters(client, catch_all, tmp_path):
    # No common file system holds such a name: the length is what the error must name.
    with pytest.raises(InputError, match="255"):
        client.files.upload(tmp_path / ("n" * 252 + ".csv"))
    assert not catch_all.called


def test_upload_accepts_a_name_of_exactly_255_characters(client, requests_mock, tmp_path):
    name = "n" * 251 + ".csv"
    path = tmp_path / name
    path.write_text("a,b\n")
    _slot(requests_mock)
    _storage(requests_mock)
    client.files.upload(path)
    assert requests_mock.request_history[0].json()["filename"] == name


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "status, kind",
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (405, APIError),
        (409, APIError),
        (418, APIError),
        (422, ValidationError),
        (429, RateLimitError),
        (500, ServerError),
        (501, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_each_status_raises_its_error_kind(requests_mock, status, kind):
    client = make_client(max_retries=0)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        status_code=status,
        json=api_error("some_code", "What went wrong"),
        headers=JSON_ERROR_HEADERS,
    )
    with pytest.raises(RebyteError) as caught:
        client.tasks.get("t1")
    error = caught.value
    assert type(error) is kind
    assert isinstance(error, APIError)
    assert error.status == status
    assert error.code == "some_code"
    assert error.message == "What went wrong"
    assert error.request_id == "req_abc123"
    assert error.method == "GET"
    assert error.url == f"{BASE}/tasks/t1"
    text = str(error)
    assert "What went wrong" in text and f"HTTP {status}" in text and "req_abc123" in text


def test_rate_limit_error_carries_retry_after(requests_mock):
    client = make_client(max_retries=0)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        status_code=429,
        json=api_error("rate_limited", "Slow down"),
        headers={"Retry-After": "7"},
    )
    with pytest.raises(RateLimitError) as caught:
        client.tasks.get("t1")
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("body", [{"error": "plain words"}, {"message": "plain words"}])
def test_error_message_from_other_json_shapes(requests_mock, body):
    client = make_client(max_retries=0)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=400, json=body)
    with pytest.raises(ValidationError) as caught:
        client.tasks.get("t1")
    assert caught.value.message == "plain words"


def test_html_error_page_gives_a_short_message(requests_mock):
    client = make_client(max_retries=0)
    page = (
        "<html><head><title>502 Bad Gateway</title></head><body>"
        "<h1>Bad Gateway</h1><p>The upstream proxy fell over in a spectacular way.</p>"
        + "<!-- padding -->" * 500
        + "</body></html>"
    )
    requests_mock.get(
        f"{BASE}/tasks/t1",
        status_code=502,
        text=page,
        headers={"Content-Type": "text/html", "X-Request-Id": "req_html"},
    )
    with pytest.raises(ServerError) as caught:
        client.tasks.get("t1")
    text = str(caught.value)
    assert "spectacular" not in text and "<html" not in text
    assert "HTML" in text and "502" in text
    assert caught.value.request_id == "req_html"
    assert caught.value.code is None
    assert len(text) < 200


def test_empty_error_body_gives_a_short_message(requests_mock):
    client = make_client(max_retries=0)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=500, content=b"")
    with pytest.raises(ServerError) as caught:
        client.tasks.get("t1")
    assert "empty" in str(caught.value)
    assert "Internal Server Error" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"text": "<html><body>Welcome to the captive portal of Hotel Example</body></html>"},
        {"text": "definitely not json"},
        {"content": b""},
    ],
)
def test_success_status_with_a_non_json_body_is_malformed(client, requests_mock, kwargs):
    requests_mock.get(f"{BASE}/tasks/t1", status_code=200, **kwargs)
    with pytest.raises(MalformedResponseError) as caught:
        client.tasks.get("t1")
    assert caught.value.status == 200
    assert "captive portal" not in str(caught.value)
    assert len(str(caught.value)) < 200


def test_redirect_is_not_followed_and_the_key_stays_home(client, requests_mock):
    requests_mock.get(
        f"{BASE}/tasks/t1",
        status_code=302,
        headers={"Location": "https://evil.example.test/steal?token=abc"},
    )
    evil = requests_mock.get("https://evil.example.test/steal", json=task("running"))
    with pytest.raises(APIError) as caught:
        client.tasks.get("t1")
    assert type(caught.value) is APIError
    assert caught.value.status == 302
    assert "evil.example.test" in str(caught.value)
    assert not evil.called
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    "exc, kind, maybe_sent",
    [
        (requests.exceptions.ConnectionError, APIConnectionError, True),
        (requests.exceptions.ConnectTimeout, APITimeoutError, False),
        (requests.exceptions.ReadTimeout, APITimeoutError, True),
    ],
)
def test_connection_failures_raise_connection_errors(requests_mock, exc, kind, maybe_sent):
    client = make_client(max_retries=0)
    requests_mock.get(f"{BASE}/tasks/t1", exc=exc)
    with pytest.raises(APIConnectionError) as caught:
        client.tasks.get("t1")
    assert type(caught.value) is kind
    assert caught.value.maybe_sent is maybe_sent
    assert f"{BASE}/tasks/t1" in str(caught.value)


def test_refused_connection_is_known_to_be_unsent(requests_mock):
    client = make_client(max_retries=0)
    refused = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(
            None,
            "/v1/tasks/t1",
            reason=urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"),
        )
    )
    requests_mock.get(f"{BASE}/tasks/t1", exc=refused)
    with pytest.raises(APIConnectionError) as caught:
        client.tasks.get("t1")
    assert type(caught.value) is APIConnectionError
    assert caught.value.maybe_sent is False


def test_every_error_is_a_rebyte_error():
    for kind in (
        InputError,
        ConfigurationError,
        APIError,
        AuthenticationError,
        NotFoundError,
        ValidationError,
        RateLimitError,
        ServerError,
        UploadError,
        MalformedResponseError,
        APIConnectionError,
        APITimeoutError,
        OutcomeUnknownError,
        WaitTimeoutError,
    ):
        assert issubclass(kind, RebyteError)


# --------------------------------------------------------------------------- retries

RETRYABLE_STATUSES = [408, 429, 500, 502, 503, 504]
RETRYABLE_EXCEPTIONS = [
    requests.exceptions.ConnectionError,
    requests.exceptions.ConnectTimeout,
    requests.exceptions.ReadTimeout,
]

# name -> (call, method, url, success response)
IDEMPOTENT_CALLS = {
    "get_task": (lambda c: c.tasks.get("t1"), "GET", f"{BASE}/tasks/t1", {"json": task("running")}),
    "list_tasks": (lambda c: c.tasks.list(), "GET", f"{BASE}/tasks", {"json": {"data": []}}),
    "get_task_content": (
        lambda c: c.tasks.content("t1"),
        "GET",
        f"{BASE}/tasks/t1/content",
        {"json": {"prompts": []}},
    ),
    "delete_task": (
        lambda c: c.tasks.delete("t1"),
        "DELETE",
        f"{BASE}/tasks/t1",
        {"status_code": 204},
    ),
    "set_visibility": (
        lambda c: c.tasks.set_visibility("t1", "private"),
        "PATCH",
        f"{BASE}/tasks/t1/visibility",
        {"json": {"visibility": "private"}},
    ),
    "cancel_task": (
        lambda c: c.tasks.cancel("t1"),
        "POST",
        f"{BASE}/tasks/t1/cancel",
        {"json": {"id": "t1", "status": "canceled"}},
    ),
}


@pytest.mark.parametrize("status", RETRYABLE_STATUSES)
@pytest.mark.parametrize("name", sorted(IDEMPOTENT_CALLS))
def test_idempotent_calls_retry_on_retryable_statuses(requests_mock, clock, name, status):
    call, method, url, success = IDEMPOTENT_CALLS[name]
    client = make_client(clock)
    requests_mock.register_uri(method, url, [{"status_code": status}, success])
    call(client)
    assert requests_mock.call_count == 2
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("exc", RETRYABLE_EXCEPTIONS)
@pytest.mark.parametrize("name", sorted(IDEMPOTENT_CALLS))
def test_idempotent_calls_retry_on_connection_failures(requests_mock, clock, name, exc):
    call, method, url, success = IDEMPOTENT_CALLS[name]
    client = make_client(clock)
    requests_mock.register_uri(method, url, [{"exc": exc}, success])
    call(client)
    assert requests_mock.call_count == 2
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422, 501])
@pytest.mark.parametrize("name", sorted(IDEMPOTENT_CALLS))
def test_idempotent_calls_do_not_retry_other_statuses(requests_mock, clock, name, status):
    call, method, url, _ = IDEMPOTENT_CALLS[name]
    client = make_client(clock)
    requests_mock.register_uri(method, url, status_code=status, json=api_error("x", "no"))
    with pytest.raises(APIError):
        call(client)
    assert requests_mock.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("status", RETRYABLE_STATUSES)
def test_upload_slot_post_retries_like_an_idempotent_call(requests_mock, clock, tmp_path, status):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n")
    client = make_client(clock)
    slot = requests_mock.post(
        f"{BASE}/files",
        [
            {"status_code": status},
            {
                "status_code": 201,
                "json": {"id": "f1", "filename": "a-1.csv", "uploadUrl": STORAGE},
            },
        ],
    )
    _storage(requests_mock)
    assert client.files.upload(path) == {"id": "f1", "filename": "a-1.csv"}
    assert slot.call_count == 2


@pytest.mark.parametrize("exc", RETRYABLE_EXCEPTIONS)
def test_upload_put_retries_on_connection_failures(requests_mock, clock, tmp_path, exc):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n")
    client = make_client(clock)
    _slot(requests_mock)
    put = requests_mock.put(STORAGE, [{"exc": exc}, {"status_code": 200}])
    client.files.upload(path)
    assert put.call_count == 2


# create_task and follow_up: name -> (call, url, success body)
ONCE_ONLY_CALLS = {
    "create_task": (lambda c: c.tasks.create("Build it"), f"{BASE}/tasks", CREATED),
    "follow_up": (
        lambda c: c.tasks.follow_up("t1", "And test it"),
        f"{BASE}/tasks/t1/prompts",
        {"promptId": "p2"},
    ),
}


@pytest.mark.parametrize("name", sorted(ONCE_ONLY_CALLS))
def test_once_only_calls_retry_on_429(requests_mock, clock, name):
    call, url, body = ONCE_ONLY_CALLS[name]
    client = make_client(clock)
    requests_mock.post(url, [{"status_code": 429}, {"status_code": 201, "json": body}])
    assert call(client) == body
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("name", sorted(ONCE_ONLY_CALLS))
def test_once_only_calls_give_up_on_429_after_the_retries(requests_mock, clock, name):
    call, url, _ = ONCE_ONLY_CALLS[name]
    client = make_client(clock)
    requests_mock.post(url, status_code=429, json=api_error("rate_limited", "slow"))
    with pytest.raises(RateLimitError):
        call(client)
    assert requests_mock.call_count == 3


def _refused():
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(
            None,
            "/v1/tasks",
            reason=urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"),
        )
    )


@pytest.mark.parametrize("never_connected", [requests.exceptions.ConnectTimeout, _refused()])
@pytest.mark.parametrize("name", sorted(ONCE_ONLY_CALLS))
def test_once_only_calls_retry_when_never_connected(requests_mock, clock, name, never_connected):
    call, url, body = ONCE_ONLY_CALLS[name]
    client = make_client(clock)
    requests_mock.post(url, [{"exc": never_connected}, {"status_code": 201, "json": body}])
    assert call(client) == body
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("name", sorted(ONCE_ONLY_CALLS))
def test_once_only_calls_never_connected_gives_up_after_the_retries(requests_mock, clock, name):
    call, url, _ = ONCE_ONLY_CALLS[name]
    client = make_client(clock)
    requests_mock.post(url, exc=requests.exceptions.ConnectTimeout)
    with pytest.raises(APITimeoutError) as caught:
        call(client)
    assert caught.value.maybe_sent is False
    assert requests_mock.call_count == 3


@pytest.mark.parametrize(
    "failure",
    [
        {"status_code": 500},
        {"status_code": 502},
        {"status_code": 503},
        {"status_code": 504},
        {"exc": requests.exceptions.ReadTimeout},
        {"exc": requests.exceptions.ConnectionError(ConnectionResetError(104, "reset by peer"))},
        {"exc": requests.exceptions.ConnectionError},
        {"status_code": 201, "text": "<html>gateway says hi</html>"},
        {"status_code": 201, "json": {"unexpected": True}},
        {"status_code": 201, "json": ["not", "an", "object"]},
    ],
)
@pytest.mark.parametrize("name", sorted(ONCE_ONLY_CALLS))
def test_once_only_calls_raise_outcome_unknown_after_one_request(
    requests_mock, clock, name, failure
):
    call, url, _ = ONCE_ONLY_CALLS[name]
    client = make_client(clock)
    requests_mock.post(url, **failure)
    with pytest.raises(OutcomeUnknownError) as caught:
        call(client)
    assert requests_mock.call_count == 1
    assert clock.sleeps == []
    hint = caught.value.hint
    assert "may have been" in hint
    assert ("tasks.list(limit=5)" if name == "create_task" else "tasks.get('t1')") in hint
    assert hint in str(caught.value)
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 404, 408, 422])
@pytest.mark.parametrize("name", sorted(ONCE_ONLY_CALLS))
def test_once_only_calls_do_not_retry_client_errors(requests_mock, clock, name, status):
    call, url, _ = ONCE_ONLY_CALLS[name]
    client = make_client(clock)
    requests_mock.post(url, status_code=status, json=api_error("x", "no"))
    with pytest.raises(APIError):
        call(client)
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("max_retries, attempts", [(None, 3), (0, 1), (1, 2), (4, 5)])
def test_the_retry_count_is_bounded(requests_mock, clock, max_retries, attempts):
    client = make_client(clock, max_retries=max_retries)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=503)
    with pytest.raises(ServerError):
        client.tasks.get("t1")
    assert requests_mock.call_count == attempts
    assert len(clock.sleeps) == attempts - 1


def test_max_retries_from_the_environment(requests_mock, clock, monkeypatch):
    monkeypatch.setenv("REBYTE_MAX_RETRIES", "1")
    client = make_client(clock)
    requests_mock.get(f"{BASE}/tasks/t1", exc=requests.exceptions.ConnectionError)
    with pytest.raises(APIConnectionError):
        client.tasks.get("t1")
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("value, expected", [("7", 7.0), ("2.5", 2.5), ("60", 60.0), ("0", 0.0)])
def test_retry_after_seconds_are_honoured(requests_mock, clock, status, value, expected):
    client = make_client(clock)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [{"status_code": status, "headers": {"Retry-After": value}}, {"json": task("running")}],
    )
    client.tasks.get("t1")
    assert clock.sleeps == [expected]


def test_retry_after_http_date_is_honoured(requests_mock, clock):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    client = make_client(clock)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {
                "status_code": 503,
                "headers": {"Retry-After": email.utils.format_datetime(when, True)},
            },
            {"json": task("running")},
        ],
    )
    client.tasks.get("t1")
    (slept,) = clock.sleeps
    assert 28.0 <= slept <= 31.0


def test_retry_after_http_date_in_the_past_means_now(requests_mock, clock):
    client = make_client(clock)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"status_code": 429, "headers": {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}},
            {"json": task("running")},
        ],
    )
    client.tasks.get("t1")
    assert clock.sleeps == [0.0]


def test_unreadable_retry_after_falls_back_to_backoff(requests_mock, clock):
    client = make_client(clock)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [{"status_code": 503, "headers": {"Retry-After": "soon"}}, {"json": task("running")}],
    )
    client.tasks.get("t1")
    (slept,) = clock.sleeps
    assert 0.375 <= slept <= 0.5


@pytest.mark.parametrize("value", ["61", "3600", email.utils.formatdate(2**31, usegmt=True)])
def test_retry_after_beyond_a_minute_is_not_waited(requests_mock, clock, value):
    client = make_client(clock)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        status_code=429,
        json=api_error("rate_limited", "come back later"),
        headers={"Retry-After": value},
    )
    with pytest.raises(RateLimitError) as caught:
        client.tasks.get("t1")
    assert requests_mock.call_count == 1
    assert clock.sleeps == []
    assert caught.value.retry_after > 60


def test_backoff_is_exponential_with_jitter(requests_mock, clock):
    client = make_client(clock, max_retries=5)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=503)
    with pytest.raises(ServerError):
        client.tasks.get("t1")
    bounds = [(0.375, 0.5), (0.75, 1.0), (1.5, 2.0), (3.0, 4.0), (6.0, 8.0)]
    assert len(clock.sleeps) == len(bounds)
    for slept, (low, high) in zip(clock.sleeps, bounds):
        assert low <= slept <= high


@pytest.mark.parametrize("draw, expected", [(0.0, [0.5, 1.0]), (1.0, [0.375, 0.75])])
def test_backoff_jitter_takes_off_up_to_a_quarter(
    requests_mock, clock, monkeypatch, draw, expected
):
    monkeypatch.setattr(rebyte.retries.random, "random", lambda: draw)
    client = make_client(clock)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=502)
    with pytest.raises(ServerError):
        client.tasks.get("t1")
    assert clock.sleeps == pytest.approx(expected)


def test_backoff_is_capped(requests_mock, clock, monkeypatch):
    monkeypatch.setattr(rebyte.retries.random, "random", lambda: 0.0)
    client = make_client(clock, max_retries=7)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=500)
    with pytest.raises(ServerError):
        client.tasks.get("t1")
    assert clock.sleeps == pytest.approx([0.5, 1, 2, 4, 8, 8, 8])


def test_total_timeout_stops_retrying_before_a_pause_would_pass_it(requests_mock, clock):
    client = make_client(clock, total_timeout=5.0)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=503, headers={"Retry-After": "10"})
    with pytest.raises(ServerError):
        client.tasks.get("t1")
    assert requests_mock.call_count == 1
    assert clock.sleeps == []


# ----------------------------------------------------------------------------- waits


def test_wait_backs_off_from_poll_interval_to_the_cap(client, requests_mock, clock):
    responses = [{"json": task("running")} for _ in range(7)] + [{"json": task("completed")}]
    requests_mock.get(f"{BASE}/tasks/t1", responses)
    done = client.tasks.wait("t1", poll_interval=2, backoff=1.5, max_poll_interval=10)
    assert done["status"] == "completed"
    assert clock.sleeps == pytest.approx([2, 3, 4.5, 6.75, 10, 10, 10])
    assert requests_mock.call_count == 8


def test_wait_defaults_are_2s_by_1_5_to_10s(client, requests_mock, clock):
    responses = [{"json": task("running")} for _ in range(6)] + [{"json": task("failed")}]
    requests_mock.get(f"{BASE}/tasks/t1", responses)
    assert client.tasks.wait("t1")["status"] == "failed"
    assert clock.sleeps == pytest.approx([2, 3, 4.5, 6.75, 10, 10])


def test_wait_returns_at_once_when_already_terminal(client, requests_mock, clock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task("canceled"))
    assert client.tasks.wait("t1")["status"] == "canceled"
    assert clock.sleeps == []


def test_wait_with_prompt_id_waits_for_that_prompt(client, requests_mock, clock):
    stale = task("completed", [("p1", "succeeded")])
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"json": stale},
            {"json": stale},
            {"json": task("running", [("p1", "succeeded"), ("p2", "pending")])},
            {"json": task("running", [("p1", "succeeded"), ("p2", "running")])},
            {"json": task("failed", [("p1", "succeeded"), ("p2", "failed")])},
        ],
    )
    done = client.tasks.wait("t1", prompt_id="p2")
    assert done["prompts"][-1] == {"id": "p2", "status": "failed"}
    assert requests_mock.call_count == 5


def test_wait_without_prompt_id_would_stop_at_the_stale_status(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task("completed", [("p1", "succeeded")]))
    assert client.tasks.wait("t1")["status"] == "completed"
    assert requests_mock.call_count == 1


def test_wait_rides_out_transient_failures(requests_mock, clock):
    client = make_client(clock, max_retries=0)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"status_code": 503},
            {"exc": requests.exceptions.ConnectionError},
            {"status_code": 429},
            {"exc": requests.exceptions.ReadTimeout},
            {"status_code": 200, "text": "<html>proxy</html>"},
            {"json": task("running")},
            {"json": task("completed")},
        ],
    )
    assert client.tasks.wait("t1", max_poll_interval=100)["status"] == "completed"
    assert requests_mock.call_count == 7
    assert clock.sleeps == pytest.approx([2, 3, 4.5, 6.75, 10.125, 15.1875])


def test_wait_rides_out_failures_that_outlast_the_call_retries(client, requests_mock, clock):
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [{"status_code": 502}] * 3 + [{"status_code": 504}] * 3 + [{"json": task("completed")}],
    )
    assert client.tasks.wait("t1")["status"] == "completed"
    assert requests_mock.call_count == 7


def test_wait_times_out_with_the_last_task_seen(client, requests_mock, clock):
    running = task("running", [("p1", "running")])
    requests_mock.get(f"{BASE}/tasks/t1", json=running)
    with pytest.raises(WaitTimeoutError) as caught:
        client.tasks.wait("t1", timeout=10)
    error = caught.value
    assert error.last_task == running
    assert error.task_id == "t1"
    assert "running" in str(error)
    assert sum(clock.sleeps) == pytest.approx(10)
    assert clock.sleeps[:3] == pytest.approx([2, 3, 4.5])


def test_wait_timeout_carries_the_last_error_when_nothing_answered(requests_mock, clock):
    client = make_client(clock, max_retries=0)
    requests_mock.get(f"{BASE}/tasks/t1", status_code=503)
    with pytest.raises(WaitTimeoutError) as caught:
        client.tasks.wait("t1", prompt_id="p2", timeout=6)
    assert caught.value.last_task is None
    assert isinstance(caught.value.last_error, (ServerError, APITimeoutError))
    assert caught.value.prompt_id == "p2"
    assert "p2" in str(caught.value)


def test_wait_calls_on_status_only_on_change(client, requests_mock):
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"json": task("running", [("p1", "pending")])},
            {"json": task("running", [("p1", "pending")])},
            {"json": task("running", [("p1", "running")])},
            {"json": task("running", [("p1", "running")])},
            {"json": task("completed", [("p1", "succeeded")])},
        ],
    )
    seen = []
    client.tasks.wait("t1", on_status=lambda t: seen.append(t["prompts"][0]["status"]))
    assert seen == ["pending", "running", "succeeded"]


@pytest.mark.parametrize(
    "status, kind", [(404, NotFoundError), (401, AuthenticationError), (400, ValidationError)]
)
def test_wait_raises_at_once_on_a_permanent_error(client, requests_mock, clock, status, kind):
    requests_mock.get(f"{BASE}/tasks/t1", status_code=status, json=api_error("x", "no"))
    with pytest.raises(kind):
        client.tasks.wait("t1")
    assert requests_mock.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 0}, {"poll_interval": -1}, {"backoff": 0.5}, {"max_poll_interval": "10"}],
)
def test_wait_validates_its_arguments(client, catch_all, kwargs):
    with pytest.raises(RebyteError):
        client.tasks.wait("t1", **kwargs)
    assert not catch_all.called


# ---------------------------------------------------------------------------- events

SSE_HEADERS = {"Content-Type": "text/event-stream"}


def event(key, seq, prompt="p1", kind="text"):
    return {
        "seq": seq,
        "timestamp": "2025-01-01T00:00:00Z",
        "promptId": prompt,
        "eventType": kind,
        "payload": {"text": f"event {key}"},
        "eventKey": key,
    }


def sse(*items, newline="\n"):
    """An SSE body: items are ("event", data), ("done", data) or (":", comment)."""
    parts = []
    for name, data in items:
        if name == ":":
            parts.append(f": {data}{newline}{newline}")
        else:
            parts.append(f"event: {name}{newline}data: {json.dumps(data)}{newline}{newline}")
    return "".join(parts)


def done(last_seq, status="completed", final="All done"):
    return {"status": status, "lastSeq": last_seq, "finalResult": final}


def test_iter_events_request_and_real_done(client, requests_mock, clock):
    body = sse(("event", event("k0", 0)), ("event", event("k1", 1)), ("done", done(1)))
    stream = requests_mock.get(f"{BASE}/tasks/t1/events", text=body, headers=SSE_HEADERS)
    got = list(client.tasks.events("t1"))
    assert got == [event("k0", 0), event("k1", 1), {"eventType": "done", **done(1)}]
    (req,) = requests_mock.request_history
    assert stream.call_count == 1
    assert req.headers["Accept"] == "text/event-stream"
    assert req.headers["API_KEY"] == KEY
    assert req.stream is True
    assert req.timeout == (10.0, 60.0)
    assert clock.sleeps == []


def test_iter_events_dedupes_by_event_key_after_a_cut_off_stream(client, requests_mock):
    first = sse(("event", event("k0", 0)), ("event", event("k1", 1)))  # ends without done
    # The replay renumbers seq: only eventKey identifies an event.
    second = sse(
        ("event", event("k0", 5)),
        ("event", event("k1", 6)),
        ("event", event("k2", 7)),
        ("done", done(7)),
    )
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        [{"text": first, "headers": SSE_HEADERS}, {"text": second, "headers": SSE_HEADERS}],
    )
    got = list(client.tasks.events("t1"))
    assert [e["eventKey"] for e in got[:-1]] == ["k0", "k1", "k2"]
    assert got[-1]["eventType"] == "done"
    assert requests_mock.call_count == 2


def test_iter_events_dedupes_by_seq_without_event_keys(client, requests_mock):
    def keyless(seq):
        data = event("unused", seq)
        del data["eventKey"]
        return data

    first = sse(("event", keyless(0)), ("event", keyless(1)))
    second = sse(
        ("event", keyless(0)), ("event", keyless(1)), ("event", keyless(2)), ("done", done(2))
    )
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        [{"text": first, "headers": SSE_HEADERS}, {"text": second, "headers": SSE_HEADERS}],
    )
    got = list(client.tasks.events("t1"))
    assert [e.get("seq") for e in got] == [0, 1, 2, None]
    assert got[-1]["eventType"] == "done"


class _BrokenBody(io.BytesIO):
    """A body whose connection breaks once its bytes are read."""

    def read(self, *args):
        data = super().read(*args)
        if not data:
            raise ConnectionResetError(104, "Connection reset by peer")
        return data


def test_iter_events_resumes_after_the_connection_breaks(client, requests_mock):
    first = sse(("event", event("k0", 0)), ("event", event("k1", 1))).encode()
    second = sse(("event", event("k0", 0)), ("event", event("k1", 1)), ("event", event("k2", 2)))
    second += sse(("done", done(2)))
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        [{"body": _BrokenBody(first), "headers": SSE_HEADERS}, {"text": second}],
    )
    got = list(client.tasks.events("t1"))
    assert [e.get("eventKey") for e in got] == ["k0", "k1", "k2", None]
    assert requests_mock.call_count == 2


def test_iter_events_early_done_is_a_race_not_the_end(client, requests_mock, clock):
    early = sse(("done", done(-1, status="running", final=None)))
    real = sse(("event", event("k0", 0)), ("event", event("k1", 1)), ("done", done(1)))
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        [{"text": early, "headers": SSE_HEADERS}, {"text": real, "headers": SSE_HEADERS}],
    )
    status = requests_mock.get(f"{BASE}/tasks/t1", json=task("running", [("p1", "pending")]))
    got = list(client.tasks.events("t1", reconnect_delay=1.5))
    assert [e["eventType"] for e in got] == ["text", "text", "done"]
    assert got[-1]["lastSeq"] == 1
    assert status.call_count == 1
    assert clock.sleeps == [1.5]


def test_iter_events_empty_done_for_an_ended_task_ends(client, requests_mock):
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        text=sse(("done", done(-1, status="canceled", final=None))),
        headers=SSE_HEADERS,
    )
    requests_mock.get(f"{BASE}/tasks/t1", json=task("canceled", [("p1", "canceled")]))
    got = list(client.tasks.events("t1"))
    ended = {"eventType": "done", **done(-1, status="canceled", final=None), "promptId": "p1"}
    assert got == [ended]


def test_iter_events_handles_crlf_and_comments(client, requests_mock):
    body = sse(
        (":", "keep-alive"),
        ("event", event("k0", 0)),
        (":", "keep-alive"),
        ("event", event("k1", 1)),
        ("done", done(1)),
        newline="\r\n",
    )
    requests_mock.get(f"{BASE}/tasks/t1/events", text=body, headers=SSE_HEADERS)
    got = list(client.tasks.events("t1"))
    assert got == [event("k0", 0), event("k1", 1), {"eventType": "done", **done(1)}]


def test_iter_events_joins_multi_line_data(client, requests_mock):
    data = json.dumps(event("k0", 0), indent=1)
    body = "event: event\n" + "".join(f"data: {line}\n" for line in data.splitlines()) + "\n"
    body += sse(("done", done(0)))
    requests_mock.get(f"{BASE}/tasks/t1/events", text=body, headers=SSE_HEADERS)
    assert list(client.tasks.events("t1"))[0] == event("k0", 0)


def test_iter_events_filters_other_prompts(client, requests_mock):
    body = sse(
        ("event", event("a0", 0, prompt="p1")),
        ("event", event("b0", 0, prompt="p2")),
        ("event", event("a1", 1, prompt="p1")),
        ("event", event("b1", 1, prompt="p2")),
        ("done", done(1)),
    )
    requests_mock.get(f"{BASE}/tasks/t1/events", text=body, headers=SSE_HEADERS)
    got = list(client.tasks.events("t1", prompt_id="p2"))
    assert [e.get("eventKey") for e in got] == ["b0", "b1", None]


def test_iter_events_of_a_task_that_is_gone_raises_not_found(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1/events", status_code=404, json=api_error("not_found", "x"))
    requests_mock.get(f"{BASE}/tasks/t1", status_code=404, json=api_error("not_found", "x"))
    with pytest.raises(NotFoundError):
        list(client.tasks.events("t1"))


def test_iter_events_without_an_events_route_polls_the_task(client, requests_mock, clock):
    """A server with no /events for a task it still shows: the stream becomes polling."""
    requests_mock.get(f"{BASE}/tasks/t1/events", status_code=404, json=api_error("not_found", "x"))
    running = {"id": "t1", "status": "running", "prompts": [{"id": "p1", "status": "running"}]}
    ended = {
        "id": "t1",
        "status": "completed",
        "finalResult": "done it",
        "prompts": [{"id": "p1", "status": "succeeded"}],
    }
    requests_mock.get(f"{BASE}/tasks/t1", [{"json": running}] * 3 + [{"json": ended}])
    events = list(client.tasks.events("t1"))
    kinds = [event["eventType"] for event in events]
    assert kinds == ["polling", "status", "done"]
    assert events[-1]["status"] == "completed" and events[-1]["finalResult"] == "done it"
    assert clock.sleeps == [2.0, 3.0]  # polled at a growing pace, never in a tight loop


def test_iter_events_without_fallback_raises_not_found(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1/events", status_code=404, json=api_error("not_found", "x"))
    requests_mock.get(f"{BASE}/tasks/t1", json={"id": "t1", "status": "running", "prompts": []})
    with pytest.raises(NotFoundError):
        list(client.tasks.events("t1", polling_fallback=False))


def test_iter_events_gives_up_on_a_stream_that_keeps_failing(client, requests_mock, clock):
    requests_mock.get(f"{BASE}/tasks/t1/events", status_code=503)
    with pytest.raises(ServerError):
        list(client.tasks.events("t1"))
    # Each connection is retried as a GET, and the stream is reconnected a bounded number of times.
    attempts = client.max_retries + 1
    assert attempts < requests_mock.call_count <= attempts * attempts


def test_iter_events_gives_up_on_a_stream_that_never_says_anything(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1/events", text=sse((":", "keep-alive")))
    with pytest.raises(APIConnectionError):
        list(client.tasks.events("t1", max_reconnects=3))
    assert requests_mock.call_count == 4


# --------------------------------------------------------------------- configuration


def test_configuration_from_arguments(requests_mock):
    client = make_client(
        base_url="https://other.example.test/api/v1/",
        connect_timeout=3,
        read_timeout=7.5,
        create_timeout=99,
        max_retries=1,
    )
    assert client.base_url == "https://other.example.test/api/v1"
    requests_mock.get("https://other.example.test/api/v1/tasks/t1", json=task("running"))
    requests_mock.post("https://other.example.test/api/v1/tasks", status_code=201, json=CREATED)
    client.tasks.get("t1")
    client.tasks.create("p")
    get, post = requests_mock.request_history
    assert get.headers["API_KEY"] == KEY
    assert get.timeout == (3.0, 7.5)
    assert post.timeout == (3.0, 99.0)
    assert client.max_retries == 1


def test_configuration_from_the_environment(requests_mock, monkeypatch):
    monkeypatch.setenv("REBYTE_API_KEY", "rbk_from_the_environment")
    monkeypatch.setenv("REBYTE_BASE_URL", "https://env.example.test/v1")
    monkeypatch.setenv("REBYTE_CONNECT_TIMEOUT", "4")
    monkeypatch.setenv("REBYTE_READ_TIMEOUT", "30")
    monkeypatch.setenv("REBYTE_CREATE_TIMEOUT", "900")
    monkeypatch.setenv("REBYTE_MAX_RETRIES", "5")
    client = RebyteClient()
    assert client.max_retries == 5
    requests_mock.get("https://env.example.test/v1/tasks/t1", json=task("running"))
    requests_mock.post("https://env.example.test/v1/tasks", status_code=201, json=CREATED)
    client.tasks.get("t1")
    client.tasks.create("p")
    get, post = requests_mock.request_history
    assert get.headers["API_KEY"] == "rbk_from_the_environment"
    assert get.timeout == (4.0, 30.0)
    assert post.timeout == (4.0, 900.0)


def test_arguments_win_over_the_environment(requests_mock, monkeypatch):
    monkeypatch.setenv("REBYTE_API_KEY", "rbk_from_the_environment")
    monkeypatch.setenv("REBYTE_BASE_URL", "https://env.example.test/v1")
    monkeypatch.setenv("REBYTE_READ_TIMEOUT", "30")
    monkeypatch.setenv("REBYTE_MAX_RETRIES", "5")
    client = RebyteClient(KEY, base_url=BASE, read_timeout=9, max_retries=0)
    requests_mock.get(f"{BASE}/tasks/t1", json=task("running"))
    client.tasks.get("t1")
    assert requests_mock.last_request.headers["API_KEY"] == KEY
    assert requests_mock.last_request.timeout == (10.0, 9.0)
    assert client.max_retries == 0


def test_defaults(monkeypatch):
    client = RebyteClient(KEY)
    assert client.base_url == "https://api.rebyte.ai/v1"
    assert (client.connect_timeout, client.read_timeout, client.create_timeout) == (10, 60, 600)
    assert client.max_retries == 2


@pytest.mark.parametrize(
    "name, value",
    [
        ("REBYTE_CONNECT_TIMEOUT", "soon"),
        ("REBYTE_CONNECT_TIMEOUT", "0"),
        ("REBYTE_READ_TIMEOUT", "-5"),
        ("REBYTE_READ_TIMEOUT", "nan"),
        ("REBYTE_CREATE_TIMEOUT", "ten minutes"),
        ("REBYTE_MAX_RETRIES", "-1"),
        ("REBYTE_MAX_RETRIES", "1.5"),
        ("REBYTE_MAX_RETRIES", "many"),
        ("REBYTE_BASE_URL", "api.rebyte.ai/v1"),
        ("REBYTE_BASE_URL", "http://api.rebyte.ai/v1"),
    ],
)
def test_bad_environment_values_are_configuration_errors(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        RebyteClient(KEY)
    assert name in str(caught.value) or "URL" in str(caught.value) or "http" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"connect_timeout": 0},
        {"read_timeout": -1},
        {"create_timeout": "600"},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"total_timeout": 0},
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs):
    with pytest.raises(ConfigurationError):
        RebyteClient(KEY, **kwargs)


@pytest.mark.parametrize("key", [None, "", "   "])
def test_missing_key_says_where_to_get_one(monkeypatch, key):
    if key is not None:
        monkeypatch.setenv("REBYTE_API_KEY", key)
    with pytest.raises(ConfigurationError) as caught:
        RebyteClient()
    assert "REBYTE_API_KEY" in str(caught.value)
    assert API_KEY_URL in str(caught.value)


@pytest.mark.parametrize("key", ["", "  "])
def test_empty_key_argument_is_refused(key):
    with pytest.raises(ConfigurationError, match="REBYTE_API_KEY"):
        RebyteClient(key)


def test_key_with_spaces_is_refused_without_echoing_it():
    with pytest.raises(ConfigurationError) as caught:
        RebyteClient("rbk_secret with_space")
    assert "with_space" not in str(caught.value)


@pytest.mark.parametrize(
    "url", [f"https://user:{KEY}@api.example.test/v1", f"https://api.example.test/v1?key={KEY}"]
)
def test_a_key_pasted_into_the_base_url_is_not_echoed(url):
    with pytest.raises(ConfigurationError) as caught:
        RebyteClient(KEY, base_url=url)
    assert KEY not in str(caught.value)


def test_key_is_trimmed(requests_mock):
    client = make_client(api_key=f"  {KEY}\n")
    requests_mock.get(f"{BASE}/tasks/t1", json=task("running"))
    client.tasks.get("t1")
    assert requests_mock.last_request.headers["API_KEY"] == KEY


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://127.5.5.5/v1",
        "http://[::1]:9000/v1",
        "http://localhost:8080/v1",
        "http://LOCALHOST/v1",
        "https://api.rebyte.ai/v1",
        "https://10.0.0.5/v1",
    ],
)
def test_accepted_base_urls(url):
    assert RebyteClient(KEY, base_url=url).base_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.rebyte.ai/v1",
        "http://10.0.0.5/v1",
        "http://192.168.1.2:8080/v1",
        "http://localhost.example.com/v1",
        "http://127.0.0.1.example.com/v1",
    ],
)
def test_plain_http_is_refused_off_loopback(url):
    with pytest.raises(ConfigurationError, match="http"):
        RebyteClient(KEY, base_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "api.rebyte.ai/v1",
        "ftp://api.rebyte.ai/v1",
        "https://",
        "https://api.rebyte.ai:99999/v1",
        "https://api.rebyte.ai:port/v1",
        "https://user:pw@api.rebyte.ai/v1",
        "https://api.rebyte.ai/v1?debug=1",
        "https://api.rebyte.ai/v1#frag",
        42,
    ],
)
def test_malformed_base_urls_are_refused(url):
    with pytest.raises(ConfigurationError):
        RebyteClient(KEY, base_url=url)


def test_timeouts_go_with_every_call(client, requests_mock, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a\n")
    requests_mock.get(f"{BASE}/tasks/t1", json=task("completed", finalResult="x"))
    requests_mock.get(f"{BASE}/tasks", json={"data": []})
    requests_mock.get(f"{BASE}/tasks/t1/content", json={"prompts": []})
    requests_mock.get(f"{BASE}/tasks/t1/events", text=sse(("done", done(-1))))
    requests_mock.post(f"{BASE}/tasks", status_code=201, json=CREATED)
    requests_mock.post(f"{BASE}/tasks/t1/prompts", status_code=201, json={"promptId": "p"})
    requests_mock.post(f"{BASE}/tasks/t1/cancel", json={})
    requests_mock.patch(f"{BASE}/tasks/t1/visibility", json={"visibility": "shared"})
    requests_mock.delete(f"{BASE}/tasks/t1", status_code=204)
    _slot(requests_mock)
    _storage(requests_mock)
    client.tasks.get("t1")
    client.tasks.list()
    client.tasks.content("t1")
    list(client.tasks.events("t1"))
    client.tasks.follow_up("t1", "p")
    client.tasks.cancel("t1")
    client.tasks.set_visibility("t1", "shared")
    client.tasks.delete("t1")
    client.files.upload(path)
    client.tasks.wait("t1")
    client.tasks.create("p")
    history = requests_mock.request_history
    assert len(history) == 13
    creating = {("POST", "/v1/tasks"), ("POST", "/v1/tasks/t1/prompts")}
    for request in history:
        long_wait = (request.method, request.path) in creating
        assert request.timeout == ((10.0, 600.0) if long_wait else (10.0, 60.0)), request.path


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize("prompt", ["", "   \n\t", None, 42, ["a"], "x" * 100_001])
def test_prompt_is_validated_before_sending(client, catch_all, prompt):
    with pytest.raises(InputError):
        client.tasks.create(prompt)
    with pytest.raises(InputError):
        client.tasks.follow_up("t1", prompt)
    assert not catch_all.called


def test_prompt_of_exactly_100000_characters_is_sent(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks", status_code=201, json=CREATED)
    client.tasks.create("x" * 100_000)
    assert len(requests_mock.last_request.json()["prompt"]) == 100_000


@pytest.mark.parametrize(
    "kwargs", [{"limit": 0}, {"limit": 101}, {"limit": "5"}, {"limit": True}, {"offset": -1}]
)
def test_list_bounds_are_validated_before_sending(client, catch_all, kwargs):
    with pytest.raises(InputError):
        client.tasks.list(**kwargs)
    assert not catch_all.called


@pytest.mark.parametrize("limit", [1, 100])
def test_list_limit_bounds_are_accepted(client, requests_mock, limit):
    requests_mock.get(f"{BASE}/tasks", json={"data": []})
    client.tasks.list(limit=limit)
    assert requests_mock.last_request.qs["limit"] == [str(limit)]


BAD_TASK_IDS = ["", " ", "a b", "tab\there", "new\nline", ".", "..", "t" * 129, None, 5]

TASK_ID_CALLS = {
    "get_task": lambda c, i: c.tasks.get(i),
    "delete_task": lambda c, i: c.tasks.delete(i),
    "follow_up": lambda c, i: c.tasks.follow_up(i, "p"),
    "set_visibility": lambda c, i: c.tasks.set_visibility(i, "public"),
    "cancel_task": lambda c, i: c.tasks.cancel(i),
    "get_task_content": lambda c, i: c.tasks.content(i),
    "get_result": lambda c, i: c.tasks.result(i),
    "wait_for_task": lambda c, i: c.tasks.wait(i),
    "iter_events": lambda c, i: next(c.tasks.events(i)),
}


@pytest.mark.parametrize("task_id", BAD_TASK_IDS, ids=repr)
@pytest.mark.parametrize("name", sorted(TASK_ID_CALLS))
def test_bad_task_ids_are_refused_before_sending(client, catch_all, name, task_id):
    with pytest.raises(InputError):
        TASK_ID_CALLS[name](client, task_id)
    assert not catch_all.called


def test_a_task_id_of_128_characters_is_accepted(client, requests_mock):
    task_id = "t" * 128
    requests_mock.get(f"{BASE}/tasks/{task_id}", json={"id": task_id})
    assert client.tasks.get(task_id)["id"] == task_id


@pytest.mark.parametrize(
    "task_id, segment",
    [
        ("../files", "..%2Ffiles"),
        ("a/b", "a%2Fb"),
        ("tâche-é", "t%C3%A2che-%C3%A9"),
        ("a?b=1", "a%3Fb%3D1"),
        ("a#b", "a%23b"),
        ("%2e%2e", "%252e%252e"),
        ("t_1-x.y~z", "t_1-x.y~z"),
    ],
)
def test_task_ids_are_escaped_as_one_path_segment(client, requests_mock, task_id, segment):
    requests_mock.register_uri(
        ANY, ANY, json={"id": task_id, "promptId": "p", "visibility": "private"}
    )
    client.tasks.get(task_id)
    client.tasks.follow_up(task_id, "p")
    client.tasks.delete(task_id)
    client.tasks.set_visibility(task_id, "private")
    paths = [(r.method, url_path(r)) for r in requests_mock.request_history]
    assert paths == [
        ("GET", f"/v1/tasks/{segment}"),
        ("POST", f"/v1/tasks/{segment}/prompts"),
        ("DELETE", f"/v1/tasks/{segment}"),
        ("PATCH", f"/v1/tasks/{segment}/visibility"),
    ]
    assert all(r.qs == {} for r in requests_mock.request_history)


# ---------------------------------------------------------------------- key redaction


def test_repr_hides_the_key(client):
    text = repr(client)
    assert KEY not in text
    assert KEY[5:] not in text
    assert BASE in text
    assert "redacted" in text


def test_describe_request_hides_the_key(client):
    described = client.describe_request("POST", "/tasks", {"prompt": "p"})
    assert KEY not in json.dumps(described)
    assert described["url"] == f"{BASE}/tasks"
    assert described["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
def test_errors_never_carry_the_key_even_when_the_server_echoes_it(requests_mock, status):
    client = make_client(max_retries=0)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        status_code=status,
        json=api_error("invalid_api_key", f"API key {KEY} is not valid"),
    )
    with pytest.raises(APIError) as caught:
        client.tasks.get("t1")
    assert KEY not in str(caught.value)
    assert KEY not in caught.value.message
    assert KEY not in repr(caught.value)


def test_plain_text_error_echoing_the_key_is_scrubbed(requests_mock):
    client = make_client(max_retries=0)
    requests_mock.get(
        f"{BASE}/tasks/t1",
        status_code=401,
        text=f"bad key {KEY}",
        headers={"Content-Type": "text/plain"},
    )
    with pytest.raises(AuthenticationError) as caught:
        client.tasks.get("t1")
    assert KEY not in str(caught.value)


def test_success_with_a_non_json_body_echoing_the_key_is_scrubbed(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", text=f"key={KEY}", headers={"Content-Type": "text/plain"})
    with pytest.raises(MalformedResponseError) as caught:
        client.tasks.get("t1")
    assert KEY not in str(caught.value)


def test_long_error_message_does_not_leak_part_of_the_key(requests_mock):
    client = make_client(max_retries=0)
    message = "x" * 490 + KEY + " and more"
    requests_mock.get(f"{BASE}/tasks/t1", status_code=400, json=api_error("bad", message))
    with pytest.raises(ValidationError) as caught:
        client.tasks.get("t1")
    assert KEY[:10] not in str(caught.value)


def test_debug_logs_never_carry_the_key_or_the_upload_signature(
    client, requests_mock, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="rebyte")
    path = tmp_path / "a.csv"
    path.write_text("a,b\n")
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"status_code": 503},
            {"exc": requests.exceptions.ConnectionError},
            {"json": task("running")},
            {"status_code": 401, "json": api_error("invalid_api_key", f"bad key {KEY}")},
        ],
    )
    _slot(requests_mock)
    requests_mock.put(STORAGE, [{"status_code": 503}, {"status_code": 403}])
    client.tasks.get("t1")
    with pytest.raises(AuthenticationError):
        client.tasks.wait("t1")
    with pytest.raises(UploadError) as caught:
        client.files.upload(path)
    assert SIGNATURE not in str(caught.value)

    messages = [r.getMessage() for r in caplog.records if r.name.startswith("rebyte")]
    assert any(f"GET {BASE}/tasks/t1 -> 503" in m and "attempt 1" in m for m in messages), messages
    assert any(f"GET {BASE}/tasks/t1 -> 200" in m and "attempt 3" in m for m in messages)
    assert any(
        "PUT https://storage.example.test/bucket/uploads/file_1 -> 403" in m for m in messages
    )
    for text in messages:
        assert KEY not in text
        assert SIGNATURE not in text
        assert "X-Goog-Signature" not in text


# ----------------------------------------------------------------- imports & threads


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBYTE_")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_importing_the_client_does_not_import_requests(tmp_path):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        "import rebyte_client\n"
        "assert 'requests' not in sys.modules, 'requests was imported'\n"
        "rebyte_client.RebyteClient(api_key='rbk_x_123456789', base_url='https://x.test/v1')\n"
        "assert 'requests' in sys.modules\n"
        "print('ok')\n"
    )
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_from_the_scripts_directory(tmp_path):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        "from rebyte_client import RebyteClient, NotFoundError\n"
        "c = RebyteClient('rbk_x_123456789', base_url='https://x.test/v1')\n"
        "print(type(c).__module__, issubclass(NotFoundError, Exception))\n"
    )
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["rebyte.client", "True"]


def test_import_from_the_skill_root():
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from scripts.rebyte_client import RebyteClient, RebyteError\n"
        "c = RebyteClient('rbk_x_123456789', base_url='https://x.test/v1')\n"
        "print(type(c).__module__, RebyteError.__module__)\n"
    )
    result = _python(code, ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["scripts.rebyte.client", "scripts.rebyte.errors"]


def test_one_client_can_be_shared_by_eight_threads(client, requests_mock):
    def answer(request, context):
        task_id = urllib.parse.unquote(url_path(request).rsplit("/", 1)[-1])
        return {"id": task_id, "status": "running"}

    requests_mock.get(re.compile(re.escape(f"{BASE}/tasks/") + r"[^/]+$"), json=answer)
    start = threading.Barrier(8)

    def worker(n):
        start.wait(timeout=10)
        return [client.tasks.get(f"T{n}-{i}")["id"] for i in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    assert results == [[f"T{n}-{i}" for i in range(25)] for n in range(8)]
    assert requests_mock.call_count == 200
    assert client._session.adapters["https://"]._pool_maxsize >= 8


# --------------------------------------------------- edges found in review


def test_iter_tasks_stops_when_a_full_page_brings_nothing_new(client, requests_mock):
    same_page = {"data": [{"id": f"t{i}"} for i in range(3)]}  # no total; offset ignored
    listing = requests_mock.get(f"{BASE}/tasks", json=same_page)
    got = [t["id"] for t in client.tasks.iter(page_size=3)]
    assert got == ["t0", "t1", "t2"]
    assert listing.call_count == 2


def test_wait_makes_its_last_poll_at_the_deadline(client, requests_mock, clock):
    answers = [{"json": task("running", [("p1", "running")])}] * 4
    answers.append({"json": task("completed", [("p1", "succeeded")])})
    poll = requests_mock.get(f"{BASE}/tasks/t1", answers)
    finished = client.tasks.wait("t1", timeout=2 + 3 + 4.5 + 6.75)
    assert finished["status"] == "completed"
    assert poll.call_count == 5
    assert sum(clock.sleeps) == pytest.approx(16.25)


@pytest.mark.parametrize("option", ["timeout", "poll_interval", "max_poll_interval"])
def test_wait_rejects_bad_timings_as_input(client, requests_mock, option):
    with pytest.raises(InputError):
        client.tasks.wait("t1", **{option: 0})
    assert requests_mock.call_count == 0


def test_iter_events_for_an_older_prompt_reports_that_prompt(client, requests_mock):
    latest = event("k9", 0, prompt="p2")
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        text=sse(("event", latest), ("done", done(0, status="completed", final="p2 answer"))),
        headers=SSE_HEADERS,
    )
    requests_mock.get(
        f"{BASE}/tasks/t1", json=task("completed", [("p1", "failed"), ("p2", "succeeded")])
    )
    got = list(client.tasks.events("t1", prompt_id="p1"))
    assert got == [
        {
            "eventType": "done",
            "status": "failed",
            "lastSeq": 0,
            "finalResult": None,
            "promptId": "p1",
        }
    ]


def test_iter_events_timeout_ends_a_stream_that_only_keeps_alive(client, requests_mock, clock):
    def keep_alive(request, context):
        clock.now += 1.0  # each connection's comments take a simulated second
        return sse((":", "keep-alive"), (":", "keep-alive"))

    requests_mock.get(f"{BASE}/tasks/t1/events", text=keep_alive, headers=SSE_HEADERS)
    with pytest.raises(WaitTimeoutError) as caught:
        list(client.tasks.events("t1", timeout=3))
    assert caught.value.task_id == "t1"
    assert "watching task t1" in str(caught.value)


# --------------------------------------------------- waiting on the event stream


def test_wait_with_events_listens_instead_of_polling(client, requests_mock, clock):
    polls = requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"json": task("running", [("p1", "running")])},
            {"json": task("completed", [("p1", "succeeded")])},
        ],
    )
    stream = requests_mock.get(
        f"{BASE}/tasks/t1/events",
        text=sse(("event", event("k0", 0)), ("done", done(0))),
        headers=SSE_HEADERS,
    )
    finished = client.tasks.wait("t1", use_events=True)
    assert finished["status"] == "completed"
    assert (polls.call_count, stream.call_count) == (2, 1)
    assert clock.sleeps == []  # the end was seen at once, not at the next poll


def test_wait_with_events_falls_back_to_polling_without_a_stream(client, requests_mock, clock):
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"json": task("running", [("p1", "running")])},
            {"json": task("running", [("p1", "running")])},
            {"json": task("completed", [("p1", "succeeded")])},
        ],
    )
    requests_mock.get(f"{BASE}/tasks/t1/events", status_code=404, json=api_error("not_found", "x"))
    finished = client.tasks.wait("t1", use_events=True)
    assert finished["status"] == "completed"
    assert clock.sleeps == [2]


def test_wait_with_events_times_out_with_the_last_task(client, requests_mock, clock):
    running = task("running", [("p1", "running")])
    requests_mock.get(f"{BASE}/tasks/t1", json=running)

    def quiet_stream(request, context):
        clock.now += 4.0  # each connection brings only keep-alives for a while
        return sse((":", "keep-alive"))

    requests_mock.get(f"{BASE}/tasks/t1/events", text=quiet_stream, headers=SSE_HEADERS)
    with pytest.raises(WaitTimeoutError) as caught:
        client.tasks.wait("t1", timeout=10, use_events=True)
    assert caught.value.last_task == running
