"""What the CLI prints (issue 11): the answer once, compact JSON, -q by command, list statuses."""

from __future__ import annotations

import json
import sys

import pytest
from cli_checks import api_call, api_get, api_task, runner, wait_until
from cli_runner import ROOT, run_cli
from fake_rebyte import final_result_for

sys.path.insert(0, str(ROOT / "scripts"))
import rebyte_client  # noqa: E402
import rebyte_commands  # noqa: E402

FAST = ("--interval", "0.2")


@pytest.fixture
def cli(fake_rebyte, api_key):
    return runner(fake_rebyte, api_key)


@pytest.fixture
def done_task(fake_rebyte, api_key):
    """done_task(prompt): a task made on the server directly, once it has ended."""

    def make(prompt: str) -> dict:
        task = api_task(fake_rebyte, api_key, prompt)

        def ended():
            now = api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[1]
            return now if now["status"] != "running" else None

        return wait_until(ended, what="the task to end")

    return make


@pytest.fixture
def done_tasks(fake_rebyte, api_key):
    """done_tasks(prompts): tasks made on the server directly, all started before any is
    waited on, once each has ended (in the order of the prompts)."""

    def make(prompts) -> list:
        tasks = [api_task(fake_rebyte, api_key, prompt) for prompt in prompts]

        def ended(task):
            now = api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[1]
            return now if now["status"] != "running" else None

        return [wait_until(lambda task=task: ended(task), what="the task to end") for task in tasks]

    return make


def one_compact_line(stdout: str) -> dict:
    """stdout is one JSON document on one line, with no indentation or spaces after separators."""
    assert stdout.endswith("\n") and stdout.count("\n") == 1, stdout
    document = json.loads(stdout)
    assert stdout == json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
    return document


# ------------------------------------------------------------------- the answer, once


def test_create_wait_prints_the_answer_once_as_result(cli):
    result = cli("create", "-p", "Answer me", "--wait", *FAST)
    assert result.returncode == 0, result.stderr
    shown = one_compact_line(result.stdout)
    assert shown["result"] == final_result_for("Answer me")
    assert "finalResult" not in shown
    assert result.stdout.count(final_result_for("Answer me")) == 1


def test_create_wait_quiet_prints_the_answer(cli):
    result = cli("create", "-p", "Answer me", "--wait", "-q", *FAST)
    assert result.returncode == 0, result.stderr
    assert result.stdout == final_result_for("Answer me") + "\n"
    plain = cli("create", "-p", "Just start")
    assert plain.returncode == 0, plain.stderr
    started = one_compact_line(plain.stdout)
    assert "finalResult" not in started and "result" not in started
    quiet = cli("create", "-p", "Just start", "-q")
    assert quiet.stdout.startswith("https://") and quiet.stdout.count("\n") == 1


def test_waited_task_without_an_answer_quiet_prints_its_url(cli, fake_rebyte, api_key):
    task = api_task(fake_rebyte, api_key, "Breaks [fail]")
    result = cli("wait", task["id"], "-q", *FAST)
    assert result.returncode == 1, result.stderr
    assert result.stdout == task["url"] + "\n"


@pytest.mark.parametrize("how", ["wait", "create", "follow-up", "create-watch"])
def test_a_quiet_wait_that_times_out_prints_nothing_on_stdout(cli, fake_rebyte, api_key, how):
    """`ANSWER=$(... -q)` must never take the task's URL for its answer; stderr gives it."""
    task = api_task(fake_rebyte, api_key, "Long [duration=30]")
    limit = ("--wait-timeout", "0.3")
    args = {
        "wait": ["wait", task["id"], "--timeout", "0.3"],
        "create": ["create", "-p", "Long [duration=30]", "--wait", *limit],
        "follow-up": ["follow-up", task["id"], "-p", "More [duration=30]", "--wait", *limit],
        "create-watch": ["create", "-p", "Long [duration=30]", "--watch", *limit],
    }[how]
    result = cli(*args, "-q", *FAST)
    assert result.returncode == 7, result.stderr
    assert result.stdout == ""
    message = result.stderr_lines[-1]
    assert "still running (https://" in message and "wait again with" in message
    loud = cli(*args, *FAST)  # JSON mode: the task as it stands, as before
    assert loud.returncode == 7 and loud.json()["status"] == "running"


def test_get_of_a_finished_task_gives_result_not_final_result(cli, done_task):
    task = done_task("Done already")
    assert task["finalResult"] == final_result_for("Done already")  # the server's field
    result = cli("get", task["id"])
    assert result.returncode == 0, result.stderr
    shown = one_compact_line(result.stdout)
    assert shown["result"] == final_result_for("Done already")
    assert "finalResult" not in shown


def test_follow_up_shows_only_its_own_answer(cli, done_task):
    task = done_task("First")
    sent = cli("follow-up", task["id"], "-p", "Second [duration=2]")
    assert sent.returncode == 0, sent.stderr
    shown = one_compact_line(sent.stdout)
    # Not the first prompt's answer dressed up as this one's.
    assert "finalResult" not in shown and "result" not in shown
    waited = cli("follow-up", task["id"], "-p", "Third", "--wait", "-q", *FAST)
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout == final_result_for("Third") + "\n"


def test_wait_several_quiet_gives_a_line_per_task(cli, fake_rebyte, api_key):
    good = api_task(fake_rebyte, api_key, "Good one")
    bad = api_task(fake_rebyte, api_key, "Bad one [fail]")
    result = cli("wait", good["id"], bad["id"], "-q", *FAST)
    assert result.returncode == 1, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert lines == [
        [good["id"], "completed", final_result_for("Good one")],
        [bad["id"], "failed", bad["url"]],
    ]


def test_batch_done_lines_carry_the_answer_once(cli, tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": "Batch answer", "name": "only"}]))
    result = cli("batch", str(path), "--wait", *FAST)
    assert result.returncode == 0, result.stderr
    [created, done] = result.json_lines()
    assert done["stage"] == "done" and done["result"] == final_result_for("Batch answer")
    assert "finalResult" not in done and "finalResult" not in created


# ---------------------------------------------------------------------------- list


def test_list_gives_each_task_its_status_with_a_get_per_task(cli, fake_rebyte, api_key, done_task):
    good, bad = done_task("Fine"), done_task("Broken [fail]")
    running = api_task(fake_rebyte, api_key, "Slow [duration=30]")
    fake_rebyte.clear_log()
    result = cli("list")
    assert result.returncode == 0, result.stderr
    page = one_compact_line(result.stdout)
    statuses = {task["id"]: task["status"] for task in page["data"]}
    assert statuses == {good["id"]: "completed", bad["id"]: "failed", running["id"]: "running"}
    assert len(fake_rebyte.requests("GET", "/v1/tasks")) == 1
    assert len(fake_rebyte.requests("GET", r"/v1/tasks/[^/]+")) == 3  # what statuses cost

    fake_rebyte.clear_log()
    bare = cli("list", "--no-status")
    assert bare.returncode == 0, bare.stderr
    assert all("status" not in task for task in bare.json()["data"])
    assert len(fake_rebyte.requests("GET", r"/v1/tasks/[^/]+")) == 0


def test_list_status_filter_works_with_all(cli, fake_rebyte, api_key, done_tasks):
    failed = done_tasks([f"Broken {n} [fail]" for n in range(3)])
    done_tasks([f"Fine {n}" for n in range(3)])
    result = cli("list", "--all", "--status", "failed")
    assert result.returncode == 0, result.stderr
    page = result.json()
    assert {task["id"] for task in page["data"]} == {task["id"] for task in failed}
    assert page["total"] == 3
    one_page = cli("list", "--limit", "2", "--status", "completed")
    assert one_page.returncode == 0, one_page.stderr
    assert all(task["status"] == "completed" for task in one_page.json()["data"])
    refused = cli("list", "--status", "failed", "--no-status")
    assert refused.returncode == 2


def test_list_quiet_prints_id_status_title(cli, done_task):
    task = done_task("Title\twith a tab")
    result = cli("list", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{task['id']}\tcompleted\tTitle with a tab\n"
    bare = cli("list", "-q", "--no-status")
    assert bare.stdout == f"{task['id']}\t-\tTitle with a tab\n"


class _Tasks:
    """A stand-in for the client's tasks.get, to see which tasks with_statuses asks about."""

    def __init__(self, statuses: dict) -> None:
        self.statuses, self.asked = statuses, []
        self.tasks = self  # client.tasks.get(...)

    def get(self, task_id: str) -> dict:
        self.asked.append(task_id)
        if self.statuses[task_id] is None:
            raise rebyte_client.NotFoundError("no such task", status=404)
        if self.statuses[task_id] == "bad id":
            raise rebyte_client.InputError("task id has a space in it")
        return {"id": task_id, "status": self.statuses[task_id]}


def test_list_statuses_use_the_entrys_own_and_drop_tasks_deleted_meanwhile():
    client = _Tasks({"b": "failed", "c": None, "d e": "bad id"})
    entries = [{"id": "a", "status": "running"}, {"id": "b"}, {"id": "c"}, {"title": "no id"}]
    entries.append({"id": "d e"})
    shown = rebyte_commands.with_statuses(client, entries)
    assert sorted(client.asked) == ["b", "c", "d e"]  # `a` carried its status; one has no id
    assert shown == [
        {"id": "a", "status": "running"}, {"id": "b", "status": "failed"}, entries[3], entries[4]
    ]  # fmt: skip


# --------------------------------------------------------------------------- batch


@pytest.mark.parametrize(
    "name, content",
    [
        ("one.jsonl", '{"prompt": "Only one", "name": "solo"}\n'),
        ("one.json", '{"prompt": "Only one", "name": "solo"}'),
        ("one.yaml", "prompt: Only one\nname: solo\n"),
    ],
)
def test_batch_file_with_one_object_is_one_spec(cli, fake_rebyte, tmp_path, name, content):
    if name.endswith(".yaml"):
        pytest.importorskip("yaml")
    path = tmp_path / name
    path.write_text(content)
    result = cli("batch", str(path))
    assert result.returncode == 0, result.stderr
    [line] = result.json_lines()
    assert line["stage"] == "created" and line["index"] == 0 and line["name"] == "solo"
    assert [e["json"]["prompt"] for e in fake_rebyte.requests("POST", "/v1/tasks")] == ["Only one"]


def test_every_batch_line_carries_index_and_name(cli, fake_rebyte, tmp_path):
    specs = [
        {"prompt": "Refused", "name": "first"},
        {"prompt": "Works", "name": "second"},
        {"prompt": "Unnamed"},
    ]
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(specs))
    fake_rebyte.inject("POST", "/v1/tasks", "429")
    result = cli("batch", str(path), "--wait", "--concurrency", "1", "--max-retries", "0", *FAST)
    assert result.returncode == 5, result.stderr
    lines = result.json_lines()
    assert {(line["index"], line["stage"]) for line in lines} == {
        (0, "error"), (1, "created"), (1, "done"), (2, "created"), (2, "done"),
    }  # fmt: skip
    for line in lines:
        assert line.get("name") == specs[line["index"]].get("name"), line


def test_batch_quiet_prints_a_line_per_task(cli, fake_rebyte, tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": "Works"}, {"prompt": "Breaks [fail]"}]))
    started = cli("batch", str(path), "-q")
    assert started.returncode == 0, started.stderr
    rows = sorted(line.split("\t") for line in started.stdout.splitlines())
    assert [[row[0], row[1], row[3]] for row in rows] == [["0", "-", "running"]] + [
        ["1", "-", "running"]
    ]
    assert all(row[4].endswith(f"/run/{row[2]}") for row in rows)  # INDEX NAME ID STATUS URL
    waited = cli("batch", str(path), "-q", "--wait", *FAST)
    assert waited.returncode == 1, waited.stderr
    rows = sorted(line.split("\t") for line in waited.stdout.splitlines())
    # Like `wait -q`: the answer, or the URL when there is none.
    assert [[row[0], row[3]] for row in rows] == [["0", "completed"], ["1", "failed"]]
    assert rows[0][4] == final_result_for("Works")
    assert rows[1][4].startswith("https://") and len(rows[1]) == 5
    fake_rebyte.inject("POST", "/v1/tasks", "429")
    failed = cli("batch", str(path), "-q", "--concurrency", "1", "--max-retries", "0")
    assert failed.returncode == 5
    assert failed.stdout.splitlines()[0].startswith("0\t-\t-\terror\t")


def test_batch_wait_prints_each_task_as_it_ends(cli, tmp_path):
    path = tmp_path / "specs.json"
    specs = [{"prompt": "Slow [duration=1]", "name": "slow"}, {"prompt": "Quick", "name": "quick"}]
    path.write_text(json.dumps(specs))
    result = cli("batch", str(path), "-q", "--wait", *FAST)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [[row[0], row[1], row[3]] for row in rows] == [
        ["1", "quick", "completed"],
        ["0", "slow", "completed"],
    ]
    assert all(row[2] and row[2] != "-" for row in rows)  # the task id, for a follow-up


def test_batch_done_lines_do_not_repeat_the_created_line(cli, tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": "Fine", "name": "ok"}, {"prompt": "No [fail]"}]))
    result = cli("batch", str(path), "--wait", *FAST)
    assert result.returncode == 1, result.stderr
    created = {line["index"]: line for line in result.json_lines() if line["stage"] == "created"}
    done = {line["index"]: line for line in result.json_lines() if line["stage"] == "done"}
    assert "url" in created[0] and "workspaceId" in created[0]
    assert done[0] == {
        "index": 0, "name": "ok", "stage": "done", "id": created[0]["id"],
        "status": "completed", "result": final_result_for("Fine"),
    }  # fmt: skip
    assert set(done[1]) == {"index", "stage", "id", "status", "result"}
    assert done[1]["status"] == "failed"


# ---------------------------------------------------------------------------- help


@pytest.mark.parametrize("name", [path[0] for path in rebyte_commands.COMMANDS if len(path) == 1])
def test_each_command_help_says_what_quiet_prints(name):
    result = run_cli(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "with -q: " in result.stdout


def test_watch_json_stderr_is_empty_but_for_errors(cli, fake_rebyte, api_key):
    task = api_task(fake_rebyte, api_key, "Watched")
    result = cli("watch", task["id"], "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert api_call(fake_rebyte, api_key, "DELETE", f"/tasks/{task['id']}")[0] == 204
    gone = cli("watch", task["id"], "--json")
    assert gone.returncode == 4
    assert gone.stderr.startswith("rebyte_cli.py: error:") and gone.stdout == ""


def test_the_demo_lifecycle_prints_one_compact_line_per_command(tmp_path):
    """What the `make bench` row counts: the demo's steps, each printing one JSON line."""
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    import run_bench

    size, lines = run_bench.demo_stdout_bytes(run_bench.CLI, tmp_path)
    assert lines == 7
    assert 1000 < size < 2600  # issue 11: 2,809 bytes in 89 lines before
