"""The CLI against the real service's habits, each switched on in the local server by
its knob (tests/server-shapes.md): a task read that lags its done, no event stream,
an answer that comes late, empty or never, an executor that is ignored, a webhook
URL registered twice, and undocumented answer shapes in their other forms."""

from __future__ import annotations

import pytest
from cli_checks import api_task, create_task, runner
from fake_rebyte import final_result_for


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(prompt_duration=0.3)


@pytest.fixture
def cli(server, api_key):
    """The CLI with a short wait for answers that lag (REBYTE_RESULT_SETTLE): the habit
    is the same, the test spends less of the 3 s a user's run would allow."""
    run = runner(server, api_key)
    return lambda *args, **kwargs: run(*args, env_extra={"REBYTE_RESULT_SETTLE": "0.6"}, **kwargs)


def test_watch_believes_a_done_that_the_task_read_lags_behind(cli, server):
    server.configure(task_read_lag=1.5)
    task = create_task(cli, "Lagging read")
    watched = cli("watch", task["id"])
    assert watched.returncode == 0, watched.stderr
    assert watched.json()["status"] == "completed"
    assert watched.json()["result"] == final_result_for("Lagging read")
    assert "ended running" not in watched.stderr


def test_wait_rides_out_a_lagging_read(cli, server):
    server.configure(task_read_lag=0.6)
    task = create_task(cli, "Lag then done")
    waited = cli("wait", task["id"], "-q")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == final_result_for("Lag then done")


@pytest.mark.parametrize(
    "command",
    [("watch", "{id}"), ("create", "--prompt", "No stream here", "--watch")],
    ids=["watch", "create-watch"],
)
def test_no_events_route_falls_back_to_polling(cli, server, command):
    server.configure(events_route=False)
    task = create_task(cli, "No stream here") if "{id}" in command else None
    args = [task["id"] if part == "{id}" else part for part in command]
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.json()["status"] == "completed"
    assert "polling" in result.stderr and "deleted" not in result.stderr


def test_follow_up_watch_without_events_route_polls_too(cli, server):
    server.configure(events_route=False)
    task = create_task(cli, "First", "--wait")
    followed = cli("follow-up", task["id"], "--prompt", "Second", "--watch")
    assert followed.returncode == 0, followed.stderr
    assert followed.json()["result"] == final_result_for("Second")


def test_watch_json_without_events_route_ends_with_a_done_line(cli, server):
    server.configure(events_route=False)
    task = create_task(cli, "Json polled")
    lines = cli("watch", task["id"], "--json").json_lines()
    assert lines[0]["eventType"] == "polling"
    assert lines[-1]["eventType"] == "done" and lines[-1]["status"] == "completed"
    assert lines[-1]["result"] == final_result_for("Json polled")


def test_an_answer_available_nowhere_in_the_api_says_so(cli, server):
    done = cli("create", "--prompt", "hi [silent]", "--wait")
    assert done.returncode == 0, done.stderr
    document = done.json()
    assert document["result"] is None and document["resultAvailable"] is False
    [line] = [line for line in done.stderr_lines if "not available through the API" in line]
    assert document["url"] in line
    quiet = cli("result", document["id"], "-q")
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert cli("result", document["id"]).json()["resultAvailable"] is False


def test_watch_json_of_a_silent_prompt_gives_no_false_answer(cli, server):
    task = create_task(cli, "hello [silent]")
    lines = cli("watch", task["id"], "--json").json_lines()
    assert lines[-1]["eventType"] == "done"
    assert lines[-1]["result"] is None and lines[-1]["resultAvailable"] is False


def test_an_answer_filled_in_late_is_waited_for(cli, server):
    server.configure(final_result_delay=0.3)  # within the 0.6 s settle time
    waited = cli("create", "--prompt", "Late answer", "--wait", "-q")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == final_result_for("Late answer")


def test_an_empty_final_result_is_read_from_content(cli, server):
    server.configure(empty_final_result=True)
    waited = cli("create", "--prompt", "Empty in the view", "--wait", "-q")
    assert waited.stdout.strip() == final_result_for("Empty in the view")


def test_content_without_prompt_ids_is_matched_by_position(cli, server):
    server.configure(content_prompt_ids=False, empty_final_result=True)
    task = create_task(cli, "One", "--wait")
    followed = cli("follow-up", task["id"], "--prompt", "Two", "--wait", "-q")
    assert followed.stdout.strip() == final_result_for("Two")
    prompt_ids = [p["id"] for p in cli("get", task["id"]).json()["prompts"]]
    first = cli("result", task["id"], "--prompt-id", prompt_ids[0], "-q")
    assert first.stdout.strip() == final_result_for("One")


def test_an_ignored_executor_and_model_are_told(cli, server):
    server.configure(service_executor="opencode", service_model="gemini-3.1-pro")
    created = cli("create", "--prompt", "x", "--executor", "claude", "--model", "opus")
    assert created.returncode == 0, created.stderr
    document = created.json()
    assert document["requested"] == {"executor": "claude", "model": "opus"}
    assert document["executor"] == "opencode" and document["model"] == "gemini-3.1-pro"
    [note] = [line for line in created.stderr_lines if "asked for" in line]
    assert "executor claude" in note and "executor opencode" in note


def test_an_executor_that_runs_as_asked_gets_no_note(cli, server):
    waited = cli("create", "--prompt", "x", "--executor", "codex", "--wait")
    assert waited.json()["executor"] == "codex" and waited.json()["requested"]
    assert not [line for line in waited.stderr_lines if "asked for" in line]


def test_prompt_rows_with_completed_at_from_the_start_confuse_nothing(cli, server):
    server.configure(submitted_equals_completed=True)
    # Long enough to be still running when listed on a busy machine (0.3 s was not).
    task = create_task(cli, "Timestamps equal [duration=3]")
    running = cli("list", "--status", "running", "-q")
    assert task["id"] in running.stdout
    waited = cli("wait", task["id"], "-q")
    assert waited.returncode == 0 and waited.stdout.strip() == final_result_for("Timestamps equal")
    assert task["id"] in cli("list", "--status", "completed", "-q").stdout


def test_a_webhook_url_is_registered_once(cli, server):
    url = "https://example.com/hooks/once"
    first = cli("webhook", "add", url, "--event", "task.completed")
    second = cli("webhook", "add", url, "--event", "task.completed")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert second.json()["id"] == first.json()["id"] and second.json()["alreadyRegistered"]
    assert "nothing was added" in second.stderr
    assert len(server.requests("POST", "/v1/webhooks")) == 1
    forced = cli("webhook", "add", url, "--event", "task.completed", "--allow-duplicate")
    assert forced.returncode == 0 and forced.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("shape", ["status", "empty", "ok", "204"])
def test_cancel_says_the_status_whatever_its_answer(cli, server, api_key, shape):
    server.configure(cancel_answer=shape)
    task = api_task(server, api_key, "Long one [duration=30]")
    canceled = cli("cancel", task["id"], "-q")
    assert canceled.returncode == 0, canceled.stderr
    assert canceled.stdout.strip() == "canceled"


@pytest.mark.parametrize("wrapper", ["data", "artifacts", "bare"])
def test_artifact_upload_succeeds_whatever_the_wrapper(cli, server, tmp_path, wrapper):
    server.configure(artifact_upload_wrapper=wrapper)
    task = create_task(cli, "Make files", "--wait")
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    uploaded = cli("artifacts", "upload", task["id"], str(note), "-q")
    assert uploaded.returncode == 0, uploaded.stderr
    assert uploaded.stdout.split() == ["notes.txt"]


def test_a_large_artifact_upload_takes_the_url_by_its_other_name(cli, server, tmp_path):
    server.configure(upload_url_field="url")
    task = create_task(cli, "Make files", "--wait")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (9 * 1024 * 1024))  # over the 8 MiB that one POST takes
    uploaded = cli("artifacts", "upload", task["id"], str(big), "-q")
    assert uploaded.returncode == 0, uploaded.stderr
    assert server.artifact_sha256(task["workspaceId"], "big.bin")


def test_the_public_key_by_its_other_name(cli, server):
    server.configure(public_key_field="key")
    shown = cli("webhook", "public-key", "-q")
    assert shown.returncode == 0, shown.stderr
    assert "BEGIN PUBLIC KEY" in shown.stdout


def test_a_create_in_a_computer_does_not_say_it_provisions(cli, server):
    computer = cli("computer", "create", "--wait").json()
    created = cli("create", "--prompt", "x", "--computer", computer["id"])
    assert created.returncode == 0, created.stderr
    assert "provisioning" not in created.stderr
    assert f"in workspace {computer['id']}" in created.stderr


def test_fields_the_server_adds_are_ignored(cli, server):
    server.configure(unknown_field=True)
    waited = cli("create", "--prompt", "Unknown fields", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert waited.json()["result"] == final_result_for("Unknown fields")
    listed = cli("artifacts", "list", waited.json()["id"], "-q")
    assert listed.stdout.split() == ["output-1.bin", "report-1.md"]
    assert waited.json()["id"] in cli("list", "-q").stdout
