"""The CLI's batch command: many creates from a file, one JSON line per task as it exists."""

from __future__ import annotations

import json

import pytest
from cli_checks import api_get, assert_clean, creates, one_error, runner, wait_until
from cli_runner import cli_env, interrupt, start_cli
from fake_rebyte import final_result_for


@pytest.fixture
def cli(fake_rebyte, api_key):
    """cli(*args, ...): the CLI against the local server, held to the output contract."""
    return runner(fake_rebyte, api_key)


SPECS = [
    {"prompt": "First job", "skills": ["pdf"]},
    {"prompt": "Second job", "name": "second", "skills": "deep-research,docx"},
    {"prompt": "Third job", "githubUrl": "https://github.com/owner/repo", "branch": "dev"},
]


def check_created(result, server, count: int) -> list:
    """Every line is JSON, one per spec, each naming a task that exists on the server."""
    lines = result.json_lines()
    assert len(result.stdout.splitlines()) == len(lines) == count
    assert sorted(line["index"] for line in lines) == list(range(count))
    assert all(line["stage"] == "created" for line in lines)
    assert len({line["id"] for line in lines}) == count
    stored = {body["prompt"] for body in creates(server)}
    assert stored == {spec["prompt"] for spec in SPECS[:count]}
    return lines


def test_batch_from_a_json_array_file(cli, fake_rebyte, tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(SPECS))
    result = cli("batch", str(path), "--concurrency", "2")
    assert result.returncode == 0, result.stderr
    lines = check_created(result, fake_rebyte, 3)
    assert [line.get("name") for line in lines if line["index"] == 1] == ["second"]
    bodies = {body["prompt"]: body for body in creates(fake_rebyte)}
    assert bodies["First job"]["skills"] == ["pdf"]
    assert bodies["Second job"]["skills"] == ["deep-research", "docx"]
    assert bodies["Third job"]["githubUrl"] == "owner/repo"
    assert bodies["Third job"]["branchName"] == "dev"


def test_batch_from_json_lines(cli, fake_rebyte, tmp_path):
    path = tmp_path / "specs.jsonl"
    path.write_text("\n".join(json.dumps(spec) for spec in SPECS) + "\n")
    result = cli("batch", str(path))
    assert result.returncode == 0, result.stderr
    check_created(result, fake_rebyte, 3)


def test_batch_from_yaml(cli, fake_rebyte, tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "specs.yaml"
    path.write_text(
        "- prompt: First job\n"
        "  skills: [pdf]\n"
        "- prompt: Second job\n"
        "  name: second\n"
        "  public: true\n"
    )
    result = cli("batch", str(path))
    assert result.returncode == 0, result.stderr
    lines = check_created(result, fake_rebyte, 2)
    [shared] = [line for line in lines if line["index"] == 1]
    assert shared["shareUrl"] and shared["id"] in shared["shareUrl"]


def test_batch_from_stdin(cli, fake_rebyte):
    result = cli("batch", "-", stdin=json.dumps(SPECS[:2]))
    assert result.returncode == 0, result.stderr
    check_created(result, fake_rebyte, 2)


def test_batch_spec_files_and_prompt_files_are_relative_to_the_spec(cli, fake_rebyte, tmp_path):
    (tmp_path / "prompt.md").write_text("From a prompt file")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt_file": "prompt.md", "files": ["data.csv"]}]))
    result = cli("batch", str(path), cwd="/")
    assert result.returncode == 0, result.stderr
    [body] = creates(fake_rebyte)
    assert body["prompt"] == "From a prompt file"
    [attached] = body["files"]
    assert attached["filename"].startswith("data") and attached["filename"].endswith(".csv")
    assert len(fake_rebyte.requests("PUT", listener="upload")) == 1


def test_batch_concurrency_bounds_the_creates_in_flight(make_fake_rebyte, api_key, tmp_path):
    server = make_fake_rebyte(provision_delay=0.8)
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": f"Job {n}"} for n in range(4)]))
    result = runner(server, api_key)("batch", str(path), "--concurrency", "2")
    assert result.returncode == 0, result.stderr
    assert len(result.json_lines()) == 4
    starts = sorted(entry["time"] for entry in server.requests("POST", "/v1/tasks"))
    assert len(starts) == 4
    assert starts[1] - starts[0] < 0.4  # two at once...
    assert starts[2] - starts[0] > 0.7  # ...and the third only when one of them is done


def test_batch_wait_prints_final_states_and_exit_code(cli, fake_rebyte, tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": "Works"}, {"prompt": "Breaks [fail]"}]))
    result = cli("batch", str(path), "--wait", "--interval", "0.2")
    assert result.returncode == 1, result.stderr
    lines = result.json_lines()
    created = [line for line in lines if line["stage"] == "created"]
    done = {line["index"]: line for line in lines if line["stage"] == "done"}
    assert len(created) == 2 and len(done) == 2
    assert lines.index(created[-1]) < min(lines.index(line) for line in done.values())
    assert done[0]["status"] == "completed" and done[0]["result"] == final_result_for("Works")
    assert done[1]["status"] == "failed"


def test_batch_all_succeed_with_wait_exits_0(cli, tmp_path):
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": "A"}, {"prompt": "B"}]))
    result = cli("batch", str(path), "--wait", "--interval", "0.2")
    assert result.returncode == 0, result.stderr
    assert [line["status"] for line in result.json_lines() if line["stage"] == "done"] == [
        "completed",
        "completed",
    ]


def test_batch_where_some_creates_fail_reports_every_created_task(
    cli, fake_rebyte, api_key, tmp_path
):
    specs = [
        {"prompt": "Rate limited"},
        {"prompt": "Bad executor", "executor": "nonsense"},
        {"prompt": "Fine one"},
        {"prompt": "Fine two"},
    ]
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(specs))
    fake_rebyte.inject("POST", "/v1/tasks", "429")
    result = cli("batch", str(path), "--concurrency", "1", "--max-retries", "0")
    assert result.returncode == 5, result.stderr
    lines = {line["index"]: line for line in result.json_lines()}
    assert len(lines) == 4
    assert lines[0]["stage"] == "error" and lines[0]["exitCode"] == 5
    assert "rate limited: try again" in lines[0]["error"]
    assert lines[1]["stage"] == "error" and "executor" in lines[1]["error"]
    reported = {lines[i]["id"] for i in (2, 3) if lines[i]["stage"] == "created"}
    on_server = {task["id"] for task in api_get(fake_rebyte, api_key, "/tasks")[1]["data"]}
    assert reported == on_server and len(on_server) == 2
    failures = [line for line in result.stderr_lines if "task spec #" in line]
    assert [line.split("task spec ")[1].split(":")[0] for line in failures] == [
        "#1 (index 0)", "#2 (index 1)"
    ]  # fmt: skip


def test_batch_create_that_may_exist_is_reported(cli, fake_rebyte, api_key, tmp_path):
    """A 502 after the server created the task: the line says so, and the exit code is 6."""
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": "Ambiguous"}, {"prompt": "Fine"}]))
    fake_rebyte.inject("POST", "/v1/tasks", "502", after=True)
    result = cli("batch", str(path), "--concurrency", "1")
    assert result.returncode == 6, result.stderr
    lines = {line["index"]: line for line in result.json_lines()}
    assert lines[0]["stage"] == "error" and "may have been created" in lines[0]["error"]
    assert "recent" in lines[0]["error"]  # how to check before creating it again
    assert lines[1]["stage"] == "created"
    assert len(fake_rebyte.requests("POST", "/v1/tasks")) == 2  # the ambiguous one not resent


@pytest.mark.parametrize(
    "content, complaint",
    [
        ('[{"prompt": "ok"}, {"skills": ["pdf"]}]', "no prompt"),
        ('[{"prompt": "ok"}, {"promt": "typo"}]', "unknown field"),
        ('[{"prompt": "ok"}, {"prompt": "x", "public": "yes"}]', "public"),
        ('[{"prompt": "ok"}, {"prompt": "x", "files": ["/no/such/file"]}]', "/no/such/file"),
        ('[{"prompt": "ok"}, "just a string"]', "not an object"),
        ('[{"prompt": "ok"},', "not valid"),
        ("[]", "no task specs"),
        ('{"prompt": "ok"}\n{"prompt": ', "not valid"),
    ],
)
def test_batch_with_an_invalid_spec_creates_nothing(cli, fake_rebyte, tmp_path, content, complaint):
    path = tmp_path / "specs.json"
    path.write_text(content)
    result = cli("batch", str(path))
    assert result.returncode == 2, result.stderr
    assert complaint in one_error(result)
    assert result.stdout == ""
    assert fake_rebyte.requests(listener=None) == []


def test_batch_missing_file_exits_2(cli, fake_rebyte, tmp_path):
    result = cli("batch", str(tmp_path / "absent.json"))
    assert result.returncode == 2, result.stderr
    assert "absent.json" in one_error(result)
    assert fake_rebyte.requests(listener=None) == []


def test_batch_prints_each_task_as_it_exists_and_ctrl_c_loses_none(
    make_fake_rebyte, api_key, tmp_path
):
    server = make_fake_rebyte(provision_delay=0.4)
    path = tmp_path / "specs.json"
    path.write_text(json.dumps([{"prompt": f"Job {n}"} for n in range(5)]))
    process = start_cli(
        "batch", str(path), "--concurrency", "1", env=cli_env(server.base_url, api_key)
    )
    first = json.loads(process.stdout.readline())  # printed while the others are being made
    assert first["stage"] == "created" and first["index"] == 0
    assert process.poll() is None
    wait_until(lambda: len(server.requests("POST", "/v1/tasks")) >= 2, what="the second create")
    result = interrupt(process, after=0.1)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    lines = [first] + result.json_lines()
    reported = [line["id"] for line in lines if line.get("stage") == "created"]
    summary = lines[-1]
    assert summary["interrupted"] is True
    assert [task["id"] for task in summary["tasks"]] == reported
    assert 1 <= len(reported) < 5
    assert "may exist" in result.stderr  # the create in flight when interrupted
    for task_id in reported:
        assert api_get(server, api_key, f"/tasks/{task_id}")[0] == 200
