"""The client's shared core: paths, the one send path, polling, paging, and errors as data.

These are the pieces every endpoint group builds on (tasks today; computers,
artifacts and webhooks next), tested once here rather than per endpoint.
"""

from __future__ import annotations

import re
import sys
import urllib.parse
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import rebyte_client as rc  # noqa: E402
from rebyte.cli import errors as cli_errors  # noqa: E402
from rebyte_client import (  # noqa: E402
    FINAL_POLL_GRACE,
    MAX_ID_CHARS,
    InputError,
    NotFoundError,
    OutcomeUnknownError,
    RebyteClient,
    RebyteError,
    ServerError,
    WaitTimeoutError,
    check_id,
    check_task_id,
)

KEY = "rbk_core_test_key_456"
BASE = "https://api.example.test/v1"
STORAGE = "https://storage.example.test/bucket/obj?X-Signature=sig123"


class FakeClock:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 500.0
        self.sleeps = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def _no_rebyte_env(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("REBYTE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock) -> RebyteClient:
    made = RebyteClient(KEY, base_url=BASE, max_retries=2)
    made._sleep, made._clock = clock.sleep, clock
    yield made
    made.close()


def sent_path(request) -> str:
    return urllib.parse.urlsplit(request.url).path


# ------------------------------------------------------------------ ids and paths


@pytest.mark.parametrize(
    "value,says",
    [
        ("", "computer id is empty"),
        (None, "computer id is empty"),
        (".", "is not valid"),
        ("..", "is not valid"),
        ("a b", "spaces or control characters"),
        ("a\nb", "spaces or control characters"),
        ("x" * (MAX_ID_CHARS + 1), f"longer than {MAX_ID_CHARS}"),
    ],
)
def test_check_id_refuses_what_cannot_be_one_id_and_names_the_id(value, says):
    with pytest.raises(InputError, match=re.escape(says)) as caught:
        check_id(value, "computer id")
    assert "computer id" in str(caught.value)


def test_check_task_id_stays_public_and_says_task_id():
    assert check_task_id("t-1") == "t-1"
    with pytest.raises(InputError, match="^task id is empty$"):
        check_task_id("")
    assert check_id("x" * MAX_ID_CHARS, "webhook id") == "x" * MAX_ID_CHARS


@pytest.mark.parametrize(
    "value,segment",
    [
        ("abc", "abc"),
        ("a/b", "a%2Fb"),
        ("../files", "..%2Ffiles"),
        ("%2e%2e", "%252e%252e"),
        ("a?b#c", "a%3Fb%23c"),
        ("é", "%C3%A9"),
    ],
)
def test_path_escapes_each_id_as_exactly_one_segment(value, segment):
    path = RebyteClient._path("/tasks/{task_id}/events", task_id=value)
    assert path == f"/tasks/{segment}/events"
    assert path.count("/") == 3


def test_path_fills_several_ids_and_names_the_bad_one():
    path = RebyteClient._path(
        "/workspaces/{workspace_id}/things/{thing_id}", workspace_id="w/1", thing_id="t"
    )
    assert path == "/workspaces/w%2F1/things/t"
    with pytest.raises(InputError, match="workspace id"):
        RebyteClient._path("/workspaces/{workspace_id}", workspace_id="..")
    with pytest.raises(InputError, match="thing id is empty"):
        RebyteClient._path("/x/{thing_id}", thing_id="")


def test_a_slash_in_a_task_id_reaches_the_task_route_not_another(client, requests_mock):
    requests_mock.get(requests_mock_any(), json={"id": "a/b"})
    client.tasks.get("a/b")
    client.tasks.get("../files")
    paths = [sent_path(r) for r in requests_mock.request_history]
    assert paths == ["/v1/tasks/a%2Fb", "/v1/tasks/..%2Ffiles"]


def requests_mock_any():
    from requests_mock import ANY

    return ANY


# ------------------------------------------------------------------ the one send path


def test_no_line_but_send_calls_the_session():
    # Every module of the client package beside the face, the send path's included.
    package = Path(rc.__file__).parent / "rebyte"
    source = "".join(path.read_text() for path in sorted(package.glob("*.py")))
    calls = re.findall(r"_session\.(\w+)\(", source)
    # mount() and close() manage the pool; request() is the one send.
    assert sorted(calls) == ["close", "mount", "mount", "request"]
    assert "allow_redirects=False" in source and source.count("allow_redirects") == 1


def test_send_refuses_to_give_the_key_to_another_host(client, requests_mock):
    requests_mock.get(requests_mock_any(), json={})
    with pytest.raises(RebyteError, match="not the API host"):
        client._send("GET", "https://api.example.test.evil/v1/tasks")
    with pytest.raises(RebyteError, match="not the API host"):
        client._send("GET", "https://api.example.test/v10/tasks")
    assert requests_mock.call_count == 0


def test_send_without_key_sends_none_of_our_headers_and_counts_attempts(client, requests_mock):
    requests_mock.get(STORAGE, [{"status_code": 503}, {"status_code": 200, "content": b"ok"}])
    response, attempts = client._send("GET", STORAGE, with_key=False, stream=True)
    assert (response.status_code, attempts) == (200, 2)
    assert b"".join(client._iter_body("GET", STORAGE, response, 1024)) == b"ok"
    for request in requests_mock.request_history:
        assert "API_KEY" not in request.headers
        assert KEY not in str(request.headers)


def test_send_does_not_follow_a_redirect_to_storage(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", status_code=302, headers={"Location": STORAGE})
    requests_mock.get(STORAGE, content=b"leak")
    response, attempts = client._send("GET", f"{BASE}/tasks/t1", stream=True)
    assert (response.status_code, attempts) == (302, 1)
    assert [r.url.split("?")[0] for r in requests_mock.request_history] == [f"{BASE}/tasks/t1"]


@pytest.mark.parametrize(
    "location,target",
    [
        (STORAGE, STORAGE),
        ("/v1/blobs/1", "https://api.example.test/v1/blobs/1"),
        ("http://127.0.0.1:9000/b?sig=1", "http://127.0.0.1:9000/b?sig=1"),
        ("http://storage.example.test/b", None),
        ("ftp://storage.example.test/b", None),
        ("", None),
    ],
)
def test_redirect_target_is_checked_before_anyone_follows_it(
    client, requests_mock, location, target
):
    url = f"{BASE}/tasks/t1"
    requests_mock.get(url, status_code=302, headers={"Location": location} if location else {})
    response, _ = client._send("GET", url)
    if target is None:
        with pytest.raises(rc.APIError, match="not followed") as caught:
            client._redirect_target("GET", url, response)
        assert "sig" not in str(caught.value)
    else:
        assert client._redirect_target("GET", url, response) == target


def test_with_retries_returns_the_attempt_count(client, requests_mock, clock):
    requests_mock.get(f"{BASE}/tasks", [{"status_code": 500}] * 2 + [{"json": {"data": []}}])
    response, attempts = client._send("GET", f"{BASE}/tasks")
    assert (response.status_code, attempts) == (200, 3)
    assert len(clock.sleeps) == 2


def test_get_task_has_no_private_deadline_keyword(client):
    with pytest.raises(TypeError):
        client.tasks.get("t1", _deadline=1.0)


# ------------------------------------------------------------------ polling


def poll(client, answers, **kwargs):
    """Run _poll_until over a scripted list of objects (or exceptions to raise)."""
    calls = []

    def fetch(deadline):
        calls.append(deadline)
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    options = {
        "timeout": 60,
        "poll_interval": 1.0,
        "max_poll_interval": 3.0,
        "backoff": 2.0,
        "on_timeout": lambda last, error: WaitTimeoutError(
            "late", resource="computer", resource_id="c1", last_task=last, last_error=error
        ),
    }
    options.update(kwargs)
    result = client._poll_until(fetch, lambda obj: obj.get("status") == "ready", **options)
    return result, calls


def test_poll_until_backs_off_to_the_cap_and_reports_each_change_once(client, clock):
    seen = []
    answers = [{"status": "new"}] * 4 + [{"status": "ready", "n": 5}]
    result, calls = poll(client, answers, on_status=seen.append)
    assert result == {"status": "ready", "n": 5}
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0]
    assert seen == [{"status": "new"}, {"status": "ready", "n": 5}]
    assert len(calls) == 5


def test_poll_until_rides_out_transient_failures(client, clock):
    answers = [ServerError("down", status=503), {"status": "ready"}]
    result, _ = poll(client, answers)
    assert result == {"status": "ready"} and clock.sleeps == [1.0]


def test_poll_until_lets_a_real_error_through(client):
    with pytest.raises(NotFoundError):
        poll(client, [NotFoundError("gone", status=404, resource="computer")])


def test_poll_until_times_out_with_the_last_object_and_error(client, clock):
    answers = [{"status": "new"}] + [ServerError("down", status=502)] * 20
    with pytest.raises(WaitTimeoutError) as caught:
        poll(client, answers, timeout=5)
    error = caught.value
    assert (error.resource, error.resource_id, error.task_id) == ("computer", "c1", None)
    assert error.last_task == {"status": "new"}
    assert isinstance(error.last_error, ServerError)
    assert sum(clock.sleeps) == pytest.approx(5.0)


def test_poll_until_gives_each_fetch_its_deadline_or_the_final_grace(client, clock):
    _, calls = poll(client, [{"status": "ready"}], timeout=60)
    assert calls == [pytest.approx(clock.now + 60)]
    _, calls = poll(client, [{"status": "ready"}], timeout=0.5)
    assert calls == [pytest.approx(clock.now + FINAL_POLL_GRACE)]


def test_poll_until_runs_on_pending_once_then_polls_at_once(client, clock):
    pending = []
    answers = [{"status": "new"}, {"status": "new"}, {"status": "ready"}]
    result, _ = poll(client, answers, on_pending=pending.append)
    assert result == {"status": "ready"}
    assert len(pending) == 1 and pending[0] == pytest.approx(clock.now - 1.0 + 60)
    assert clock.sleeps == [1.0]  # none between the pending wait and the next poll


def test_poll_until_checks_its_numbers_before_fetching(client):
    for bad in ({"backoff": 0.5}, {"timeout": 0}, {"poll_interval": -1}):
        with pytest.raises(InputError):
            poll(client, [], **bad)


def test_wait_for_task_timeout_names_the_task(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t9", json={"id": "t9", "status": "running", "prompts": []})
    with pytest.raises(WaitTimeoutError) as caught:
        client.tasks.wait("t9", timeout=3)
    error = caught.value
    assert (error.resource, error.resource_id, error.task_id) == ("task", "t9", "t9")
    assert error.last_task["status"] == "running"


# ------------------------------------------------------------------ paging


def pager(pages, total=None):
    calls = []

    def list_page(limit, offset):
        calls.append((limit, offset))
        data = pages.pop(0) if pages else []
        page = {"data": [{"id": i} for i in data]}
        if total is not None:
            page["total"] = total
        return page

    return list_page, calls


def test_iter_pages_walks_offsets_until_a_short_page():
    list_page, calls = pager([[1, 2], [3, 4], [5]])
    ids = [item["id"] for item in RebyteClient._iter_pages(list_page, 2)]
    assert ids == [1, 2, 3, 4, 5]
    assert calls == [(2, 0), (2, 2), (2, 4)]


def test_iter_pages_stops_at_total_without_an_empty_request():
    list_page, calls = pager([[1, 2], [3, 4]], total=4)
    assert [item["id"] for item in RebyteClient._iter_pages(list_page, 2)] == [1, 2, 3, 4]
    assert len(calls) == 2


def test_iter_pages_skips_repeats_and_stops_when_offset_is_ignored():
    list_page, calls = pager([[1, 2], [2, 3], [1, 2], [1, 2], [9]])
    assert [item["id"] for item in RebyteClient._iter_pages(list_page, 2)] == [1, 2, 3]
    assert len(calls) == 3


def test_iter_pages_refuses_a_bad_page_size():
    list_page, calls = pager([[1]])
    for size in (0, 101, "2"):
        with pytest.raises(InputError):
            list(RebyteClient._iter_pages(list_page, size))
    assert calls == []


def test_iter_tasks_goes_through_list_tasks(client, requests_mock):
    pages = [
        {"json": {"data": [{"id": "a"}, {"id": "b"}], "total": 3}},
        {"json": {"data": [{"id": "c"}], "total": 3}},
    ]
    requests_mock.get(f"{BASE}/tasks", pages)
    assert [t["id"] for t in client.tasks.iter(page_size=2)] == ["a", "b", "c"]
    assert [r.qs for r in requests_mock.request_history] == [
        {"limit": ["2"], "offset": ["0"]},
        {"limit": ["2"], "offset": ["2"]},
    ]


# ------------------------------------------------------------------ errors as data

NOT_FOUND = {"status_code": 404, "json": {"error": {"code": "not_found", "message": "nope"}}}


@pytest.mark.parametrize(
    "call,method,path,resource",
    [
        (lambda c: c.tasks.get("t1"), "GET", "/tasks/t1", "task"),
        (lambda c: c.tasks.content("t1"), "GET", "/tasks/t1/content", "task"),
        (lambda c: c.tasks.follow_up("t1", "more"), "POST", "/tasks/t1/prompts", "task"),
        (lambda c: c.tasks.cancel("t1"), "POST", "/tasks/t1/cancel", "task"),
        (lambda c: c.tasks.set_visibility("t1"), "PATCH", "/tasks/t1/visibility", "task"),
        (lambda c: c.tasks.delete("t1"), "DELETE", "/tasks/t1", "task"),
        (
            lambda c: list(c.tasks.events("t1", polling_fallback=False)),
            "GET",
            "/tasks/t1/events",
            "task",
        ),
        (lambda c: c.tasks.list(), "GET", "/tasks", None),
        (lambda c: c.tasks.create("x"), "POST", "/tasks", None),
    ],
)
def test_not_found_names_the_resource_of_the_route(
    client, requests_mock, call, method, path, resource
):
    requests_mock.register_uri(method, BASE + path, **NOT_FOUND)
    with pytest.raises(NotFoundError) as caught:
        call(client)
    assert caught.value.resource == resource
    assert caught.value.message == "nope"


def test_upload_slot_not_found_is_a_collection_route(client, requests_mock, tmp_path):
    source = tmp_path / "a.txt"
    source.write_text("hi")
    requests_mock.post(f"{BASE}/files", **NOT_FOUND)
    with pytest.raises(NotFoundError) as caught:
        client.files.upload(source)
    assert caught.value.resource is None


def test_outcome_unknown_carries_operation_and_says_it_in_library_terms(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks", status_code=502)
    requests_mock.post(f"{BASE}/tasks/t1/prompts", status_code=502)
    with pytest.raises(OutcomeUnknownError) as created:
        client.tasks.create("x")
    with pytest.raises(OutcomeUnknownError) as followed:
        client.tasks.follow_up("t1", "more")
    assert (created.value.operation, created.value.resource_id) == ("create_task", None)
    assert (followed.value.operation, followed.value.resource_id) == ("follow_up", "t1")
    assert "tasks.list(limit=5)" in created.value.hint
    assert "tasks.get('t1')" in followed.value.hint
    for error in (created.value, followed.value):
        assert "rebyte_cli" not in str(error)
        assert str(error) == f"{error.message}; {error.hint}"


# ------------------------------------------------------------------ the CLI's wording


def explain(error) -> str:
    return cli_errors.explain(rc, error)


@pytest.mark.parametrize(
    "resource,advice",
    [
        (
            "task",
            "the task may have been deleted: list tasks with `python3 scripts/rebyte_cli.py list`",
        ),
        ("computer", "`python3 scripts/rebyte_cli.py computer list`"),
        ("webhook", "`python3 scripts/rebyte_cli.py webhook list`"),
        ("artifact", "`python3 scripts/rebyte_cli.py artifacts list ID`"),
        ("workspace", "no task or workspace has that id: list tasks with `python3 scripts/"),
        (None, "the API has no such route: check --base-url / REBYTE_BASE_URL"),
    ],
)
def test_explain_words_not_found_by_resource(resource, advice):
    error = NotFoundError("not found", status=404, resource=resource)
    text = explain(error)
    assert text.startswith(f"{error}; ")
    assert advice in text
    assert ("list tasks" in text) == (resource in ("task", "workspace"))
    assert cli_errors.exit_code_for(rc, error) == cli_errors.EXIT_NOT_FOUND


@pytest.mark.parametrize(
    "operation,resource_id,advice",
    [
        (
            "create_task",
            None,
            "the task may have been created: check with `python3 scripts/rebyte_cli.py recent` "
            "(or `python3 scripts/rebyte_cli.py list --limit 5`) before creating it again",
        ),
        (
            "follow_up",
            "t7",
            "the follow-up may have been sent: check with "
            "`python3 scripts/rebyte_cli.py get t7` before sending it again",
        ),
        ("create_computer", None, "`python3 scripts/rebyte_cli.py computer list --limit 5`"),
        ("add_webhook", None, "`python3 scripts/rebyte_cli.py webhook list`"),
        ("upload_artifacts", "ws3", "`python3 scripts/rebyte_cli.py artifacts list ws3`"),
    ],
)
def test_explain_words_outcome_unknown_by_operation(operation, resource_id, advice):
    error = OutcomeUnknownError(
        "POST /v1/x: connection failed",
        hint="library words",
        operation=operation,
        resource_id=resource_id,
    )
    text = explain(error)
    assert text.startswith("POST /v1/x: connection failed; ")
    assert advice in text
    assert "library words" not in text
    assert cli_errors.exit_code_for(rc, error) == cli_errors.EXIT_NETWORK


def test_explain_keeps_the_library_hint_for_an_unknown_operation():
    error = OutcomeUnknownError("broke", hint="check it", operation="something_new")
    assert explain(error) == "broke; check it"


def test_explain_after_a_real_create_reads_as_the_cli_always_said(client, requests_mock):
    requests_mock.post(f"{BASE}/tasks", status_code=502, json={"error": {"message": "bad gw"}})
    with pytest.raises(OutcomeUnknownError) as caught:
        client.tasks.create("x")
    assert explain(caught.value) == (
        "bad gw (HTTP 502); the task may have been created: check with "
        "`python3 scripts/rebyte_cli.py recent` "
        "(or `python3 scripts/rebyte_cli.py list --limit 5`) before creating it again"
    )
