"""The CLI on existing tasks: follow-up, wait, watch, result, cancel, share, upload, delete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from cli_checks import api_get, api_task, assert_clean, one_error, runner, wait_until
from cli_runner import CLI, CliResult, cli_env, start_cli
from fake_rebyte import final_result_for

FAST = ("--interval", "0.2")


@pytest.fixture
def cli(fake_rebyte, api_key):
    """cli(*args, ...): the CLI against the local server, held to the output contract."""
    return runner(fake_rebyte, api_key)


@pytest.fixture
def new_task(fake_rebyte, api_key):
    """new_task(prompt, done=False): a task made on the server directly (fast set-up)."""

    def make(prompt: str, done: bool = False) -> dict:
        task = api_task(fake_rebyte, api_key, prompt)
        if not done:
            return task

        def ended():
            now = api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[1]
            return now if now["status"] != "running" else None

        return wait_until(ended, what="the task to end")

    return make


def prompt_of(task: dict, prompt_id: str) -> dict:
    [prompt] = [p for p in task["prompts"] if p["id"] == prompt_id]
    return prompt


# ---------------------------------------------------------------------------- follow-up


def test_follow_up_wait_waits_for_the_follow_up_itself(cli, fake_rebyte, new_task):
    task = new_task("First", done=True)
    assert task["status"] == "completed"
    prompt = "Now this [duration=0.8]"
    started = time.monotonic()
    result = cli("follow-up", task["id"], "--prompt", prompt, "--wait", *FAST)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    shown = result.json()
    followed = prompt_of(shown, shown["promptId"])
    assert followed["status"] == "succeeded"
    assert shown["status"] == "completed"
    assert shown["result"] == final_result_for(prompt)
    assert elapsed >= 0.6  # it did wait for the new prompt, not the completed first one
    [sent] = fake_rebyte.requests("POST", r"/v1/tasks/[^/]+/prompts")
    assert sent["json"] == {"prompt": prompt}


def test_follow_up_wait_uses_its_prompt_id_not_the_task_status(cli, new_task):
    """The task stays running (a slow first prompt); the quick follow-up alone decides."""
    task = new_task("Slow [duration=6]")
    started = time.monotonic()
    result = cli("follow-up", task["id"], "--prompt", "Quick [duration=0.5]", "--wait", *FAST)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 4
    shown = result.json()
    assert prompt_of(shown, shown["promptId"])["status"] == "succeeded"
    assert shown["status"] == "running"


def test_follow_up_wait_on_a_failing_prompt_exits_1(cli, new_task):
    task = new_task("First", done=True)
    result = cli("follow-up", task["id"], "--prompt", "Now fail [fail]", "--wait", *FAST)
    assert result.returncode == 1, result.stderr
    shown = result.json()
    assert prompt_of(shown, shown["promptId"])["status"] == "failed"
    assert shown["status"] == "failed"


def test_follow_up_with_skills_and_file_and_watch(cli, fake_rebyte, tmp_path, new_task):
    task = new_task("First")
    path = tmp_path / "more.txt"
    path.write_text("more")
    result = cli(
        "follow-up", task["id"], "-p", "Use it", "--skills", "pdf,docx", "--file", str(path),
        "--watch",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = result.json()
    assert shown["result"] == final_result_for("Use it")
    assert prompt_of(shown, shown["promptId"])["status"] == "succeeded"
    [sent] = fake_rebyte.requests("POST", r"/v1/tasks/[^/]+/prompts")
    assert sent["json"]["skills"] == ["pdf", "docx"]
    [attached] = sent["json"]["files"]
    assert attached["filename"].startswith("more")
    assert "→ bash" in result.stderr  # the follow-up's events were shown


def test_follow_up_quiet_prints_the_task_url(cli, new_task):
    task = new_task("First")
    result = cli("follow-up", task["id"], "--prompt", "More", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == task["url"] + "\n"


# --------------------------------------------------------------------------------- wait


def test_wait_one_task_includes_its_result(cli, new_task):
    task = new_task("Do it")
    result = cli("wait", task["id"], *FAST)
    assert result.returncode == 0, result.stderr
    shown = result.json()
    assert shown["status"] == "completed"
    assert shown["result"] == final_result_for("Do it")
    assert "finalResult" not in shown  # the answer once, as `result`
    quiet = cli("wait", task["id"], "-q")
    assert quiet.stdout == final_result_for("Do it") + "\n"  # -q: the answer


def test_wait_several_tasks_concurrently(cli, fake_rebyte, new_task):
    tasks = [new_task(f"Job {n} [duration=1.5]") for n in range(3)]
    fake_rebyte.clear_log()
    started = time.monotonic()
    result = cli("wait", *[t["id"] for t in tasks], *FAST)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    shown = result.json()
    assert [t["id"] for t in shown] == [t["id"] for t in tasks]
    assert all(t["status"] == "completed" for t in shown)
    assert elapsed < 3.0
    # concurrent: every task is polled from the start, not one after the other
    first_poll = {}
    for entry in fake_rebyte.requests("GET", r"/v1/tasks/[^/]+"):
        first_poll.setdefault(entry["path"].rsplit("/", 1)[1], entry["time"])
    assert len(first_poll) == 3
    assert max(first_poll.values()) - min(first_poll.values()) < 0.5


def test_wait_several_exit_code_says_whether_all_succeeded(cli, new_task):
    good = new_task("Fine")
    bad = new_task("Broken [fail]")
    result = cli("wait", good["id"], bad["id"], *FAST)
    assert result.returncode == 1, result.stderr
    assert [t["status"] for t in result.json()] == ["completed", "failed"]


def test_wait_several_with_a_missing_task_reports_the_others(cli, new_task):
    good = new_task("Fine")
    result = cli("wait", good["id"], "no-such-task", *FAST)
    assert result.returncode == 4, result.stderr
    shown = result.json()
    assert shown[0]["status"] == "completed"
    assert shown[1]["id"] == "no-such-task" and "not found" in shown[1]["error"]


def test_wait_prompt_id(cli, new_task):
    task = new_task("First")
    sent = cli("follow-up", task["id"], "--prompt", "Second [duration=0.7]")
    prompt_id = sent.json()["promptId"]
    assert prompt_of(sent.json(), prompt_id)["status"] in ("pending", "running")
    result = cli("wait", task["id"], "--prompt-id", prompt_id, *FAST)
    assert result.returncode == 0, result.stderr
    assert prompt_of(result.json(), prompt_id)["status"] == "succeeded"


def test_wait_timeout_exits_7_with_the_task_and_one_line(cli, fake_rebyte, new_task):
    task = new_task("Long [duration=30]")
    fake_rebyte.clear_log()
    result = cli("wait", task["id"], "--timeout", "0.6", *FAST)
    assert result.returncode == 7, result.stderr
    shown = result.json()
    assert shown["id"] == task["id"] and shown["status"] == "running"
    message = one_error(result)
    assert "timed out" in message and f"wait {task['id']}" in message
    # It listened on the event stream rather than polling every 0.2 s.
    assert len(fake_rebyte.requests("GET", r"/v1/tasks/[^/]+/events")) >= 1
    assert len(fake_rebyte.requests("GET", r"/v1/tasks/[^/]+")) <= 2


def test_wait_polls_at_its_interval_when_the_event_stream_fails(cli, fake_rebyte, new_task):
    task = new_task("Long [duration=30]")
    fake_rebyte.inject("GET", r"/v1/tasks/[^/]+/events", "500", count=100)
    polls = {}
    for interval in ("0.1", "5"):  # in a wait of 0.5 s
        fake_rebyte.clear_log()
        args = ("wait", task["id"], "--timeout", "0.5", "--interval", interval, "--max-retries",
                "0")
        result = cli(*args)
        assert result.returncode == 7, result.stderr
        polls[interval] = len(fake_rebyte.requests("GET", r"/v1/tasks/[^/]+"))
    assert polls["0.1"] >= 4 and polls["5"] < polls["0.1"]


def test_create_wait_timeout_exits_7(cli):
    result = cli("create", "-p", "Long [duration=30]", "--wait", "--wait-timeout", "0.5", *FAST)
    assert result.returncode == 7, result.stderr
    assert result.json()["status"] == "running"
    assert "timed out" in one_error(result)


# -------------------------------------------------------------------------------- watch


def test_watch_json_lines_end_with_done(cli, new_task):
    task = new_task("Watch me")
    result = cli("watch", task["id"], "--json")
    assert result.returncode == 0, result.stderr
    events = result.json_lines()
    kinds = [event["eventType"] for event in events]
    assert kinds[0] == "init" and "tool_use" in kinds and "result" in kinds
    assert kinds[-1] == "done" and kinds.count("done") == 1
    assert events[-1]["status"] == "completed"
    assert events[-1]["result"] == final_result_for("Watch me")
    assert "finalResult" not in events[-1]
    assert result.stderr == ""  # with --json, stderr is for warnings and errors only
    keys = [event["eventKey"] for event in events[:-1]]
    assert len(keys) == len(set(keys))  # nothing repeated


def test_watch_readable_shows_tool_calls_and_exits_by_outcome(cli, new_task):
    good = new_task("Fine")
    result = cli("watch", good["id"])
    assert result.returncode == 0, result.stderr
    assert "→ bash: ls /code" in result.stderr
    assert result.json()["result"] == final_result_for("Fine")
    bad = new_task("Broken [fail]")
    failed = cli("watch", bad["id"])
    assert failed.returncode == 1, failed.stderr
    assert failed.json()["status"] == "failed"
    assert "failed" in failed.stderr


def test_watch_shows_a_question_clearly_with_the_follow_up_hint(cli, new_task):
    task = new_task("Ask me [ask]")
    result = cli("watch", task["id"])
    assert result.returncode == 0, result.stderr
    lines = result.stderr_lines
    [asked] = [i for i, line in enumerate(lines) if "Which format should the answer use?" in line]
    assert "asks" in lines[asked]
    assert f"follow-up {task['id']} --prompt" in lines[asked + 1]


def test_watch_gives_up_at_its_wait_timeout_on_a_quiet_stream(cli, new_task):
    task = new_task("Slow [duration=30]")
    started = time.monotonic()
    result = cli("watch", task["id"], "--wait-timeout", "0.5")
    elapsed = time.monotonic() - started
    assert result.returncode == 7, result.stderr
    assert elapsed < 0.5 + 2.5
    assert result.json()["status"] == "running"  # the task as it stands, for the agent
    assert "timed out" in one_error(result)


def test_create_watch_honours_wait_timeout(cli):
    result = cli("create", "--prompt", "Slow [duration=30]", "--watch", "--wait-timeout", "0.5")
    assert result.returncode == 7, result.stderr
    assert result.json()["status"] == "running"


def test_watch_unknown_task_exits_4(cli):
    result = cli("watch", "no-such-task")
    assert result.returncode == 4, result.stderr
    assert "not found" in one_error(result)


# ------------------------------------------------------------------------------- result


def test_result_prints_the_answer(cli, new_task):
    task = new_task("Answer me", done=True)
    quiet = cli("result", task["id"], "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == final_result_for("Answer me") + "\n"
    shown = cli("result", task["id"]).json()
    assert shown["result"] == final_result_for("Answer me")
    assert shown["status"] == "completed"


def test_result_while_running_exits_7(cli, new_task):
    task = new_task("Long [duration=30]")
    result = cli("result", task["id"])
    assert result.returncode == 7, result.stderr
    assert result.json()["result"] is None
    assert f"wait {task['id']}" in one_error(result)


def test_result_of_a_failed_task_exits_1(cli, new_task):
    task = new_task("Broken [fail]", done=True)
    result = cli("result", task["id"])
    assert result.returncode == 1, result.stderr
    assert result.json()["status"] == "failed"


# ------------------------------------------------------------------------------- cancel


def test_cancel_then_the_task_reads_canceled(cli, fake_rebyte, new_task):
    task = new_task("Long [duration=30]")
    result = cli("cancel", task["id"])
    assert result.returncode == 0, result.stderr
    assert result.json()["id"] == task["id"]
    assert len(fake_rebyte.requests("POST", r"/v1/tasks/[^/]+/cancel")) == 1
    assert cli("get", task["id"]).json()["status"] == "canceled"
    waited = cli("wait", task["id"], *FAST)
    assert waited.returncode == 1, waited.stderr
    assert waited.json()["status"] == "canceled"


# -------------------------------------------------------------------------------- share


def test_share_visibilities(cli, fake_rebyte, api_key, new_task):
    task = new_task("Share me")
    public = cli("share", task["id"], "-q")
    assert public.returncode == 0, public.stderr
    assert public.stdout.endswith("\n") and len(public.stdout.splitlines()) == 1
    share_url = public.stdout.strip()
    assert share_url.startswith("https://") and task["id"] in share_url
    assert cli("share", task["id"]).json()["shareUrl"] == share_url
    fake_rebyte.configure(task_view_extras=True)  # the documented task view does not show it
    for visibility in ("shared", "private", "public"):
        result = cli("share", task["id"], "--visibility", visibility)
        assert result.returncode == 0, result.stderr
        assert result.json()["visibility"] == visibility
        stored = api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[1]
        assert stored["visibility"] == visibility
    assert cli("share", task["id"], "--visibility", "everyone").returncode == 2


# ------------------------------------------------------------------------------- upload


def test_upload_one_and_several(cli, fake_rebyte, tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("1" * 100)
    two = tmp_path / "two.bin"
    two.write_bytes(b"\0" * 3000)
    single = cli("upload", str(one))
    assert single.returncode == 0, single.stderr
    ref = single.json()
    assert ref["filename"].startswith("one") and fake_rebyte.file_info(ref["id"])["size"] == 100

    several = cli("upload", str(one), str(two), "-q")
    assert several.returncode == 0, several.stderr
    lines = several.stdout.splitlines()
    assert len(lines) == 2
    for line, size in zip(lines, (100, 3000)):
        file_id, _, filename = line.partition(":")
        info = fake_rebyte.file_info(file_id)
        assert info["filename"] == filename and info["uploaded"] and info["size"] == size


def test_upload_a_missing_path_sends_nothing(cli, fake_rebyte, tmp_path):
    present = tmp_path / "here.txt"
    present.write_text("x")
    result = cli("upload", str(present), str(tmp_path / "absent.txt"))
    assert result.returncode == 2, result.stderr
    assert "absent.txt" in one_error(result)
    assert fake_rebyte.requests(listener=None) == []


# ------------------------------------------------------------------------------- delete


def test_delete_one(cli, fake_rebyte, api_key, new_task):
    task = new_task("Bye")
    result = cli("delete", task["id"], "--yes")
    assert result.returncode == 0, result.stderr
    assert result.json() == {"id": task["id"], "deleted": True}
    assert api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[0] == 404


def test_delete_several_with_a_missing_one(cli, fake_rebyte, api_key, new_task):
    first, second = new_task("One"), new_task("Two")
    result = cli("delete", first["id"], "no-such-task", second["id"], "-y")
    assert result.returncode == 4, result.stderr
    shown = result.json()
    assert [(d["id"], d["deleted"]) for d in shown] == [
        (first["id"], True),
        ("no-such-task", False),
        (second["id"], True),
    ]
    assert "no-such-task" in one_error(result)
    for task in (first, second):
        assert api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[0] == 404
    quiet = cli("delete", new_task("Three")["id"], "-q", "--yes")
    assert quiet.returncode == 0 and len(quiet.stdout.splitlines()) == 1


def test_delete_off_a_terminal_without_yes_is_refused_and_sends_nothing(
    cli, fake_rebyte, api_key, new_task
):
    task = new_task("Keep me")
    fake_rebyte.clear_log()
    for args in (["delete", task["id"]], ["delete", task["id"], "no-such-task", "-q"]):
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        assert one_error(result).endswith(
            "--yes required when not running interactively: confirm with the user, then pass --yes"
        )
        assert result.stdout == ""
    assert fake_rebyte.requests() == []
    assert api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[0] == 200


def run_on_a_terminal(args, env, answer: bytes) -> tuple:
    """Run the CLI with stdin on a pseudo-terminal that types `answer`; (code, stdout, stderr)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(CLI), *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    os.write(master, answer)
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        os.close(master)
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("answer, deleted", [(b"y\n", True), (b"n\n", False), (b"\n", False)])
def test_delete_on_a_terminal_asks_first(fake_rebyte, api_key, new_task, answer, deleted):
    task = new_task("Maybe")
    env = cli_env(fake_rebyte.base_url, api_key)
    code, stdout, stderr = run_on_a_terminal(["delete", task["id"]], env, answer)
    assert f"delete task {task['id']}? [y/N]" in stderr
    assert "Traceback" not in stderr
    if deleted:
        assert code == 0, stderr
        assert json.loads(stdout) == {"id": task["id"], "deleted": True}
    else:
        assert code == 2 and stdout == ""
        assert "not confirmed; nothing was sent" in stderr
        assert fake_rebyte.requests("DELETE") == []
    assert api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[0] == (404 if deleted else 200)


def test_cancel_during_a_watch_ends_the_watch_with_exit_1(cli, fake_rebyte, api_key, new_task):
    task = new_task("Long [duration=30]")
    watcher = start_cli("watch", task["id"], env=cli_env(fake_rebyte.base_url, api_key))
    wait_until(lambda: fake_rebyte.requests("GET", r"/v1/tasks/[^/]+/events"), what="a stream")
    assert cli("cancel", task["id"]).returncode == 0
    stdout, stderr = watcher.communicate(timeout=20)
    result = CliResult(watcher.args, watcher.returncode, stdout, stderr)
    assert_clean(result, api_key)
    assert result.returncode == 1, result.stderr
    assert result.json()["status"] == "canceled"


# ------------------------------------------------------------------- task references


def test_a_task_url_stands_for_its_id(cli, new_task):
    task = new_task("Find me by URL")
    result = cli("get", task["url"])
    assert result.returncode == 0, result.stderr
    assert result.json()["id"] == task["id"]


def test_batch_has_no_watch_option(cli, tmp_path):
    specs = tmp_path / "tasks.jsonl"
    specs.write_text('{"prompt": "one"}\n')
    result = cli("batch", str(specs), "--watch")
    assert result.returncode == 2
    assert "--watch" in one_error(result)


def test_waiting_on_more_tasks_than_run_at_once_keeps_one_deadline(cli, new_task):
    ids = [new_task(f"Long {n} [duration=30]")["id"] for n in range(70)]  # over twice 32
    started = time.monotonic()
    result = cli("wait", *ids, "--timeout", "1", *FAST)
    elapsed = time.monotonic() - started
    assert result.returncode == 7, result.stderr
    assert [task["status"] for task in result.json()] == ["running"] * 70
    assert elapsed < 1 + 2.5  # the deadline, then a last poll each, on a busy machine
