"""The local record through the CLI: every create written down before it is sent, so
that a create killed at any moment leaves its trace, and `recent` finds its task."""

from __future__ import annotations

import json
import os
import signal

import pytest
from cli_checks import create_task, runner, wait_until
from cli_runner import cli_env, start_cli


@pytest.fixture
def cli(fake_rebyte, api_key):
    return runner(fake_rebyte, api_key)


def record_lines(folder) -> list:
    path = folder / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_create_is_recorded_with_its_workspace(cli, local_record_in_tmp, api_key):
    task = create_task(cli, "Write the parser tests")
    lines = record_lines(local_record_in_tmp)
    assert [line["event"] for line in lines] == ["pending", "created"]
    assert lines[0]["prompt"] == "Write the parser tests" and lines[0]["host"] == "127.0.0.1"
    assert lines[1]["id"] == task["id"] and lines[1]["workspaceId"] == task["workspaceId"]
    text = (local_record_in_tmp / "record.jsonl").read_text()
    assert api_key not in text


def test_a_create_refused_by_the_server_is_recorded_as_failed(cli, local_record_in_tmp):
    result = cli("create", "--prompt", "x", "--workspace", "no-such-workspace")
    assert result.returncode != 0
    assert [line["event"] for line in record_lines(local_record_in_tmp)] == ["pending", "failed"]


def test_batch_records_each_create_with_its_name(cli, local_record_in_tmp, tmp_path):
    specs = tmp_path / "tasks.jsonl"
    specs.write_text(
        "\n".join(json.dumps({"prompt": f"job {n}", "name": f"n{n}"}) for n in range(4))
    )
    result = cli("batch", str(specs), "--concurrency", "4")
    assert result.returncode == 0, result.stderr
    made = [line for line in record_lines(local_record_in_tmp) if line["event"] == "created"]
    pending = [line for line in record_lines(local_record_in_tmp) if line["event"] == "pending"]
    assert len(made) == 4 and sorted(line["batch"] for line in pending) == ["n0", "n1", "n2", "n3"]


def test_a_computer_create_is_recorded(cli, local_record_in_tmp):
    result = cli("computer", "create", "--name", "build box")
    assert result.returncode == 0, result.stderr
    lines = record_lines(local_record_in_tmp)
    assert [(line["kind"], line["event"]) for line in lines] == [
        ("computer", "pending"),
        ("computer", "created"),
    ]
    assert lines[1]["id"] == result.json()["id"]


def test_recent_says_which_of_its_tasks_and_computers_were_deleted(cli, local_record_in_tmp):
    kept, gone = create_task(cli, "Keep me"), create_task(cli, "Delete me")
    computer = cli("computer", "create", "--name", "box").json()
    assert cli("delete", gone["id"], "--yes").returncode == 0
    assert cli("computer", "delete", computer["id"], "--yes").returncode == 0
    assert cli("delete", "no-such-task", "--yes").returncode == 4  # not noted: not deleted
    shown = {e["id"]: e for e in cli("recent", "--offline").json()["data"]}
    assert shown[gone["id"]]["deleted"] is True and shown[gone["id"]]["state"] == "created"
    assert shown[computer["id"]]["deleted"] is True and shown[computer["id"]]["kind"] == "computer"
    assert "deleted" not in shown[kept["id"]] and "no-such-task" not in shown
    notes = [line for line in record_lines(local_record_in_tmp) if line["event"] == "note"]
    assert [(n["kind"], n["id"]) for n in notes] == [
        ("task", gone["id"]), ("computer", computer["id"])
    ]  # fmt: skip
    plain = cli("recent", "--offline", "-q").stdout.splitlines()
    states = {line.split("\t")[2]: line.split("\t")[1] for line in plain}
    assert states == {kept["id"]: "created", gone["id"]: "deleted", computer["id"]: "deleted"}


def test_the_record_can_be_turned_off(cli, local_record_in_tmp):
    create_task_result = cli("create", "--prompt", "x", env_extra={"REBYTE_RECORD": "off"})
    assert create_task_result.returncode == 0
    assert record_lines(local_record_in_tmp) == []


def killed_create(server, api_key, prompt: str):
    """A create whose task the server made, killed (-9) while its answer was on the way."""
    before = server.tasks_created
    server.inject("POST", "/v1/tasks", "stall", after=True)
    process = start_cli("create", "--prompt", prompt, env=cli_env(server.base_url, api_key))
    wait_until(lambda: server.tasks_created == before + 1, what="the task to be made")
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)


def test_a_create_killed_before_its_answer_is_found_by_recent(
    cli, fake_rebyte, api_key, local_record_in_tmp
):
    create_task(cli, "An earlier task that is not the one")
    killed_create(fake_rebyte, api_key, "Summarize the quarterly numbers please")
    result = cli("recent")
    assert result.returncode == 0, result.stderr
    entries = result.json()["data"]
    assert [entry["state"] for entry in entries] == ["pending", "created"]
    [candidate] = entries[0]["candidates"]
    [made] = [task for task in fake_rebyte._tasks.values() if task.title.startswith("Summarize")]
    assert candidate["id"] == made.id and candidate["match"] == "title"
    quiet = cli("recent", "-q").stdout.splitlines()
    assert quiet[0].split("\t")[1:3] == ["pending", "-"]
    assert quiet[1].split("\t")[1:3] == ["maybe", made.id]


def test_recent_offline_asks_no_server(cli, fake_rebyte, api_key, local_record_in_tmp):
    killed_create(fake_rebyte, api_key, "Something long")
    fake_rebyte.clear_log()
    result = cli("recent", "--offline")
    assert result.returncode == 0 and fake_rebyte.requests() == []
    assert result.json()["data"][0]["state"] == "pending"


def test_a_rerun_of_an_unanswered_create_warns_before_it_sends(
    cli, fake_rebyte, api_key, local_record_in_tmp
):
    killed_create(fake_rebyte, api_key, "Deploy the docs site")
    result = cli("create", "--prompt", "Deploy the docs site")
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr_lines if "warning" in line]
    assert len(warning) == 1 and "recent" in warning[0]
    assert warning[0].startswith("rebyte_cli.py: warning: ") and "error" not in warning[0]
    other = cli("create", "--prompt", "Something else entirely")
    assert not [line for line in other.stderr_lines if "warning" in line]
