"""The `computer` commands and `create --computer / --new-computer`, as a subprocess
against the local server over real HTTP."""

from __future__ import annotations

import json
import signal
import sys

import pytest
from cli_checks import api_call, assert_clean, creates, error_lines, one_error, runner, wait_until
from cli_runner import CLI, CliResult, cli_env, run_cli, start_cli
from docs_support import Block, parse_command

sys.path.insert(0, str(CLI.parent))
from rebyte.cli import computer  # noqa: E402

EXAMPLES = [
    line
    for path, row in computer.COMMANDS.items()
    if path[0] == "computer"
    for line in row.examples
]


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(prompt_duration=0.2, computer_ready_delay=0.3, retry_after="0")


@pytest.fixture
def cli(server, api_key):
    return runner(server, api_key)


def made(server, api_key, name="box") -> str:
    """A computer made straight on the server; its id."""
    status, computer = api_call(server, api_key, "POST", "/agent-computers", {"name": name})
    assert status == 201, computer
    return computer["id"]


def computer_posts(server) -> list:
    return server.requests("POST", "/v1/agent-computers")


def test_every_verb_has_examples_that_run(server, api_key, tmp_path):
    assert {path[1] for path in computer.COMMANDS if path[0] == "computer"} == {
        "create",
        "get",
        "list",
        "wait",
        "delete",
    }
    (tmp_path / "scripts").symlink_to(CLI.parent, target_is_directory=True)
    # The examples wait at the default 2 s interval: computers are ready at once here, so
    # each wait ends at its first poll (the tests below see provisioning, then ready).
    server.configure(computer_ready_delay=0)
    for line in EXAMPLES:
        assert line.startswith("python3 scripts/rebyte_cli.py computer "), line
        command = parse_command(Block("help", 0, "bash", line), 0, line)
        args = [made(server, api_key) if a == "COMPUTER_ID" else a for a in command.args]
        result = run_cli(*args, env=cli_env(server.base_url, api_key), cwd=str(tmp_path))
        assert result.returncode == 0, (args, result.stderr)
        assert_clean(result, api_key)
        if command.quiet:
            assert result.stdout.strip() and not result.stdout.startswith("{"), result.stdout
        else:
            result.json()


def test_create_names_the_computer_on_stderr_at_once(cli, server):
    result = cli("computer", "create", "--name", "build box", "--icon", "laptop")
    assert result.returncode == 0, result.stderr
    computer = result.json()
    assert computer["status"] == "provisioning"
    assert result.stderr_lines[0].startswith(f"computer {computer['id']} created")
    assert computer_posts(server)[0]["json"] == {"name": "build box", "icon": "laptop"}


def test_create_wait_quiet_prints_the_ready_computer_id(cli, server, api_key):
    result = cli("computer", "create", "--wait", "--interval", "0.1", "-q")
    assert result.returncode == 0, result.stderr
    computer_id = result.stdout.strip()
    assert computer_id in result.stderr  # said on stderr even with -q: it outlives the run
    assert api_call(server, api_key, "GET", f"/agent-computers/{computer_id}")[1]["status"] == (
        "ready"
    )


def test_a_computer_that_ends_in_error_exits_1_with_its_reason(cli):
    result = cli(
        "computer", "create", "--name", "x [provision-error]", "--wait", "--interval", "0.1"
    )
    assert result.returncode == 1, result.stderr
    computer = result.json()
    assert computer["status"] == "error"
    line = one_error(result)
    assert computer["provisionError"].rstrip(". ") in line and "computer delete" in line


def test_get_list_and_list_all(cli, server, api_key):
    first, second = made(server, api_key, "one"), made(server, api_key, "two")
    assert cli("computer", "get", first).json()["id"] == first
    assert cli("computer", "get", first, "-q").stdout == f"{first}\n"
    page = cli("computer", "list", "--limit", "1").json()
    assert [c["id"] for c in page["data"]] == [second] and page["total"] == 2
    assert cli("computer", "list", "--all", "-q").stdout.split() == [second, first]
    assert cli("computer", "list", "--offset", "1", "-q").stdout.split() == [first]


def test_an_unknown_computer_says_how_to_list_them(cli):
    result = cli("computer", "get", "no-such-computer")
    assert result.returncode == 4
    assert "computer list" in one_error(result)


def test_wait_for_several_reports_each(cli, server, api_key):
    good, bad = made(server, api_key), made(server, api_key, "[provision-error]")
    result = cli("computer", "wait", good, bad, "--interval", "0.1")
    assert result.returncode == 1, result.stderr
    documents = result.json()
    assert [d["status"] for d in documents] == ["ready", "error"]
    assert "error" in documents[1] and "error" not in documents[0]
    assert len(error_lines(result)) == 1 and bad in error_lines(result)[0]


def test_a_wait_that_runs_out_exits_7_and_says_how_to_wait_again(cli, server, api_key):
    server.configure(computer_ready_delay=30)
    computer_id = made(server, api_key)
    result = cli("computer", "wait", computer_id, "--timeout", "0.5", "--interval", "0.1")
    assert result.returncode == 7, result.stderr
    assert result.json()["status"] == "provisioning"
    assert f"computer wait {computer_id}" in one_error(result)


def test_delete_needs_yes_off_a_terminal(cli, server, api_key):
    computer_id = made(server, api_key)
    result = cli("computer", "delete", computer_id)
    assert result.returncode == 2 and "--yes" in one_error(result)
    assert server.requests("DELETE") == []
    result = cli("computer", "delete", computer_id, "--yes")
    assert result.returncode == 0, result.stderr
    assert result.json() == {"id": computer_id, "deleted": True}
    assert api_call(server, api_key, "GET", f"/agent-computers/{computer_id}")[0] == 404


def test_deleting_several_goes_on_past_a_missing_one(cli, server, api_key):
    first, second = made(server, api_key), made(server, api_key)
    result = cli("computer", "delete", first, "gone-already", second, "--yes", "-q")
    assert result.returncode == 4
    assert result.stdout.split() == [first, second]
    assert "gone-already" in one_error(result)


@pytest.mark.parametrize("fault", ["500", "reset"])
def test_a_create_that_may_have_happened_is_not_resent(cli, server, fault):
    server.inject("POST", "/v1/agent-computers", fault, after=True)
    result = cli("computer", "create")
    assert result.returncode == 6
    assert "computer list --limit 5" in one_error(result)
    assert len(computer_posts(server)) == 1


def test_bad_input_is_refused_before_sending(cli, server):
    for args in (["create", "--name", "n" * 201], ["get", "a b"], ["delete", "..", "--yes"]):
        result = cli("computer", *args)
        assert result.returncode == 2, (args, result.stderr)
        one_error(result)
    assert server.requests(path_regex=r"/v1/agent-computers.*") == []


# ------------------------------------------------------------------ create in a computer


def test_create_computer_is_an_alias_of_workspace(cli, server, api_key):
    computer_id = made(server, api_key)
    wait_until(
        lambda: (
            api_call(server, api_key, "GET", f"/agent-computers/{computer_id}")[1]["status"]
            == "ready"
        ),
        what="the computer to be ready",
    )
    result = cli("create", "--prompt", "Run the tests", "--computer", computer_id)
    assert result.returncode == 0, result.stderr
    assert result.json()["workspaceId"] == computer_id
    assert creates(server) == [{"prompt": "Run the tests", "workspaceId": computer_id}]


def test_new_computer_creates_waits_then_runs_the_task_in_it(cli, server):
    result = cli(
        "create",
        "--prompt",
        "Run the tests [duration=0.1]",
        "--new-computer",
        "--interval",
        "0.1",
        "--wait",
    )
    assert result.returncode == 0, result.stderr
    task = result.json()
    [post] = computer_posts(server)
    computer_id = task["workspaceId"]
    assert creates(server) == [
        {"prompt": "Run the tests [duration=0.1]", "workspaceId": computer_id}
    ]
    lines = result.stderr_lines
    said = [i for i, line in enumerate(lines) if f"computer {computer_id} created" in line]
    running = [i for i, line in enumerate(lines) if f"task {task['id']} is running" in line]
    assert said == [0] and running and said[0] < running[0], result.stderr
    assert any(f"computer {computer_id}: ready" in line for line in lines)
    order = [e["path"] for e in server.requests("POST")]
    assert order == ["/v1/agent-computers", "/v1/tasks"]


def test_new_computer_is_named_after_the_prompt(cli, server):
    prompt = "Benchmark   the parser\n" + "on every input " * 10
    result = cli("create", "--prompt", prompt, "--new-computer", "--interval", "0.1")
    assert result.returncode == 0, result.stderr
    [post] = computer_posts(server)
    assert post["json"] == {"name": " ".join(prompt.split())[:60]}


def test_new_computer_that_fails_to_provision_creates_no_task(cli, server):
    result = cli("create", "--prompt", "x [provision-error]", "--new-computer", "--interval", "0.1")
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    line = one_error(result)
    assert "failed to provision" in line and "computer delete" in line
    assert creates(server) == []
    assert result.stderr_lines[0].startswith("computer ")


def test_new_computer_dry_run_sends_nothing(cli, server):
    result = cli("create", "--prompt", "x", "--new-computer", "--dry-run")
    assert result.returncode == 0, result.stderr
    document = result.json()
    assert document["computerRequest"]["url"].endswith("/agent-computers")
    assert document["request"]["json"]["workspaceId"] == "<new computer>"
    assert server.requests() == []


def test_new_computer_and_a_workspace_do_not_go_together(cli, server):
    result = cli("create", "--prompt", "x", "--new-computer", "--computer", "c1")
    assert result.returncode == 2 and "not allowed" in one_error(result)
    assert server.requests() == []


def _first_stderr_line(process) -> str:
    line = process.stderr.readline()
    assert line, "the CLI ended without saying anything"
    return line


def test_ctrl_c_while_the_computer_provisions_names_it(server, api_key):
    server.configure(computer_ready_delay=30)
    process = start_cli(
        "create",
        "--prompt",
        "x",
        "--new-computer",
        "--interval",
        "0.1",
        env=cli_env(server.base_url, api_key),
    )
    try:
        first = _first_stderr_line(process)
        wait_until(lambda: len(server.requests("GET")) >= 2, what="a poll of the computer")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    result = CliResult(process.args, process.returncode, stdout, first + stderr)
    assert_clean(result, api_key)
    assert result.returncode == 130, result.stderr
    computer_id = first.split()[1]
    assert json.loads(stdout) == {"interrupted": True, "computers": [{"id": computer_id}]}
    [line] = [line for line in error_lines(result) if "interrupted" in line]
    assert computer_id in line and "keeps existing" in line and "computer delete" in line
    assert creates(server) == []


def test_ctrl_c_while_the_computer_is_created_says_it_may_exist(server, api_key):
    server.inject("POST", "/v1/agent-computers", "stall")
    process = start_cli("computer", "create", env=cli_env(server.base_url, api_key))
    try:
        wait_until(lambda: computer_posts(server), what="the create to arrive")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    result = CliResult(process.args, process.returncode, stdout, stderr)
    assert_clean(result, api_key)
    assert result.returncode == 130
    assert "computer list --limit 5" in one_error(result)
