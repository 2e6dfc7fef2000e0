"""The client on the documented shapes and on the real service's known habits
(../shared/api-contract.md, "What the real service does that the documents do not say"),
with requests_mock and a fake clock: answers that lag or never come, done in prompt
words, no workspaceId in the task view, undocumented wrappers."""

from __future__ import annotations

import pytest
from rebyte_client import MalformedResponseError, WorkspaceUnknownError
from test_client import BASE, FakeClock, make_client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock):
    client = make_client(clock)
    yield client
    client.close()


def task(status="completed", final=None, prompts=("succeeded",), **extra) -> dict:
    rows = [{"id": f"p{n}", "status": s} for n, s in enumerate(prompts, 1)]
    body = {"id": "t1", "url": "https://app.rebyte.ai/run/t1", "status": status, "prompts": rows}
    if final is not None:
        body["finalResult"] = final
    return {**body, **extra}


def content(*responses, ids=True) -> dict:
    rows = []
    for n, response in enumerate(responses, 1):
        row = {"status": "succeeded", "userPrompt": f"prompt {n}", "response": response}
        rows.append({"id": f"p{n}", **row} if ids else row)
    return {"id": "t1", "prompts": rows}


# ------------------------------------------------------------------------- answers


def test_an_answer_filled_in_after_the_status_is_read_again(client, requests_mock, clock):
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [{"json": task(final=None)}, {"json": task(final="")}, {"json": task(final="42")}],
    )
    assert client.tasks.result("t1") == "42"
    assert len(clock.sleeps) == 2 and sum(clock.sleeps) <= 3.0
    assert not requests_mock.request_history[-1].url.endswith("/content")


def test_re_reads_stop_at_the_settle_time_then_content_answers(client, requests_mock, clock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task(final=""))
    requests_mock.get(f"{BASE}/tasks/t1/content", json=content("from content"))
    assert client.tasks.result("t1", settle=2.0) == "from content"
    assert sum(clock.sleeps) <= 2.0 and len(clock.sleeps) >= 2


def test_no_settling_when_told_not_to(client, requests_mock, clock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task(final=""))
    requests_mock.get(f"{BASE}/tasks/t1/content", json=content("c"))
    assert client.tasks.result("t1", settle=0) == "c" and clock.sleeps == []


def test_an_answer_nowhere_in_the_api_is_none(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task(final=""))
    requests_mock.get(f"{BASE}/tasks/t1/content", json=content(None))
    assert client.tasks.result("t1") is None


def test_an_agent_that_answered_with_nothing_is_an_empty_answer(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task(final=""))
    requests_mock.get(f"{BASE}/tasks/t1/content", json=content(""))
    assert client.tasks.result("t1") == ""


def test_a_failed_prompt_is_not_waited_on_for_an_answer(client, requests_mock, clock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task("failed", prompts=("failed",)))
    requests_mock.get(f"{BASE}/tasks/t1/content", json=content(None))
    assert client.tasks.result("t1") is None and clock.sleeps == []


def test_content_entries_without_ids_are_matched_by_position(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task(final="latest", prompts=("succeeded",) * 3))
    requests_mock.get(
        f"{BASE}/tasks/t1/content", json=content("first", "second", "latest", ids=False)
    )
    assert client.tasks.result("t1", prompt_id="p2") == "second"
    assert client.tasks.result("t1", prompt_id="p3") == "latest"  # the view answers the latest
    assert client.tasks.result("t1", prompt_id="p9") is None


def test_content_entries_with_ids_are_matched_by_id(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task(final="x", prompts=("succeeded",) * 2))
    rows = content("first", "second")
    rows["prompts"].reverse()  # ids decide, not the order
    requests_mock.get(f"{BASE}/tasks/t1/content", json=rows)
    assert client.tasks.result("t1", prompt_id="p1") == "first"


# ------------------------------------------------------------------ the event stream


def sse(*events) -> str:
    return "".join(f"event: {name}\ndata: {data}\n\n" for name, data in events)


def test_a_done_in_prompt_words_alone_ends_a_stream_the_read_lags_behind(client, requests_mock):
    """done {succeeded, lastSeq 3} with no events on this connection, the task read still
    says running: the stream is the task's latest prompt, so the done is believed."""
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        text=sse(("done", '{"status": "succeeded", "lastSeq": 3, "finalResult": "hi"}')),
        headers={"Content-Type": "text/event-stream"},
    )
    requests_mock.get(f"{BASE}/tasks/t1", json=task("running", prompts=("running",)))
    [done] = list(client.tasks.events("t1"))
    assert done["eventType"] == "done" and done["status"] == "succeeded"
    assert done["finalResult"] == "hi" and done["promptId"] == "p1"


def test_an_empty_done_ends_the_stream_once_the_task_says_so(client, requests_mock, clock):
    """lastSeq -1 with no events: a race while the task runs, the end once it has ended."""
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        text=sse(("done", '{"status": "succeeded", "lastSeq": -1, "finalResult": ""}')),
        headers={"Content-Type": "text/event-stream"},
    )
    requests_mock.get(
        f"{BASE}/tasks/t1",
        [
            {"json": task("running", prompts=("running",))},
            {"json": task("completed", final="")},
        ],
    )
    [done] = list(client.tasks.events("t1"))
    assert done["status"] == "completed" and done["lastSeq"] == -1
    assert clock.sleeps == [1.0]  # one reconnect after the race-looking done


def test_a_done_for_an_earlier_prompt_is_not_taken_for_ours(client, requests_mock, clock):
    """Right after a follow-up the stream may still be the previous prompt's."""
    requests_mock.get(
        f"{BASE}/tasks/t1/events",
        text=sse(("done", '{"status": "succeeded", "lastSeq": 5, "finalResult": "old"}')),
        headers={"Content-Type": "text/event-stream"},
    )
    before = task("completed", final="old")
    after = task("completed", final="new", prompts=("succeeded", "succeeded"))
    requests_mock.get(f"{BASE}/tasks/t1", [{"json": before}, {"json": after}])
    [done] = list(client.tasks.events("t1", prompt_id="p2"))
    assert done["promptId"] == "p2" and done["finalResult"] == "new"


# ------------------------------------------------------------------ workspaces


def test_a_task_view_without_workspace_id_is_not_malformed(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task())
    with pytest.raises(WorkspaceUnknownError) as caught:
        client.tasks.workspace_of("t1")
    assert caught.value.task_id == "t1" and "create answer" in str(caught.value)
    assert not isinstance(caught.value, MalformedResponseError)


def test_a_known_workspace_needs_no_task_read(client, requests_mock):
    requests_mock.get(f"{BASE}/workspaces/w1/artifacts", json={"data": [{"filename": "a.md"}]})
    workspace_id = client.tasks.workspace_of("t1", known="w1")
    assert [e["name"] for e in client.artifacts.list(workspace_id)] == ["a.md"]
    assert [r.path for r in requests_mock.request_history] == ["/v1/workspaces/w1/artifacts"]


def test_a_task_view_that_happens_to_carry_it_is_used(client, requests_mock):
    requests_mock.get(f"{BASE}/tasks/t1", json=task(workspaceId="w9"))
    assert client.tasks.workspace_of("t1") == "w9"


# -------------------------------------------------------- undocumented answer shapes


@pytest.mark.parametrize(
    "answer",
    [
        {"data": [{"filename": "n.txt", "size": 3}]},
        {"artifacts": [{"name": "n.txt"}]},
        [{"filename": "n.txt"}],
        {"filename": "n.txt"},
        {"ok": True},
    ],
    ids=["data", "artifacts", "bare", "one-entry", "no-entries"],
)
def test_an_artifact_upload_is_a_success_whatever_the_wrapper(
    client, requests_mock, tmp_path, answer
):
    path = tmp_path / "n.txt"
    path.write_bytes(b"abc")
    requests_mock.post(f"{BASE}/workspaces/w1/artifacts", status_code=201, json=answer)
    [entry] = client.artifacts.upload("w1", [str(path)])
    assert entry["name"] == "n.txt" and entry["size"] == 3


def test_an_artifact_upload_answer_that_is_not_json_is_still_a_success(
    client, requests_mock, tmp_path
):
    path = tmp_path / "n.txt"
    path.write_bytes(b"abc")
    requests_mock.post(f"{BASE}/workspaces/w1/artifacts", status_code=201, text="Created")
    assert [e["name"] for e in client.artifacts.upload("w1", [str(path)])] == ["n.txt"]


@pytest.mark.parametrize("field", ["uploadUrl", "url", "signedUrl"])
def test_the_upload_url_answer_may_name_its_url_differently(
    client, requests_mock, tmp_path, monkeypatch, field
):
    import rebyte.artifacts

    monkeypatch.setattr(rebyte.artifacts, "SMALL_ARTIFACT_BYTES", 2)
    path = tmp_path / "big.bin"
    path.write_bytes(b"abcdef")
    requests_mock.post(
        f"{BASE}/workspaces/w1/artifacts/upload-url",
        status_code=201,
        json={field: "https://storage.example.test/put?sig=1"},
    )
    requests_mock.put("https://storage.example.test/put", status_code=200)
    [entry] = client.artifacts.upload("w1", [str(path)])
    assert entry["name"] == "big.bin" and requests_mock.request_history[-1].method == "PUT"


@pytest.mark.parametrize(
    "answer", [{"publicKey": "PEM"}, {"key": "PEM", "algorithm": "x"}, {"data": {"pem": "PEM"}}]
)
def test_the_public_key_answer_may_name_its_key_differently(client, requests_mock, answer):
    requests_mock.get(f"{BASE}/webhooks/public_key", json=answer)
    assert client.webhooks.public_key()["publicKey"] == "PEM"


def test_a_public_key_answer_with_no_key_is_malformed(client, requests_mock):
    requests_mock.get(f"{BASE}/webhooks/public_key", json={"algorithm": "ed25519"})
    with pytest.raises(MalformedResponseError, match="holds no key"):
        client.webhooks.public_key()


@pytest.mark.parametrize(
    "reply",
    [{"status_code": 204}, {"json": {}}, {"json": {"ok": True}}, {"text": ""}],
    ids=["204", "empty-object", "ok", "empty-200"],
)
def test_a_cancel_is_a_success_whatever_it_answers(client, requests_mock, reply):
    requests_mock.post(f"{BASE}/tasks/t1/cancel", **reply)
    assert isinstance(client.tasks.cancel("t1"), dict)


# ------------------------------------------------------------------------ webhooks

HOOK = "https://example.com/hooks/rebyte"


def test_a_webhook_url_already_registered_is_not_added_again(client, requests_mock):
    requests_mock.get(f"{BASE}/webhooks", json={"data": [{"id": "wh1", "url": HOOK}]})
    adding = requests_mock.post(f"{BASE}/webhooks", status_code=201, json={"id": "wh2"})
    hook = client.webhooks.create(HOOK, ["task.completed"])
    assert hook["id"] == "wh1" and hook["alreadyRegistered"] is True and not adding.called


def test_a_duplicate_webhook_is_added_when_allowed(client, requests_mock):
    listing = requests_mock.get(f"{BASE}/webhooks", json={"data": [{"id": "wh1", "url": HOOK}]})
    requests_mock.post(f"{BASE}/webhooks", status_code=201, json={"id": "wh2", "url": HOOK})
    assert client.webhooks.create(HOOK, ["task.completed"], allow_duplicate=True)["id"] == "wh2"
    assert not listing.called
