"""`artifacts` commands and `create`/`follow-up --wait --download`, run as a user runs them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
from cli_checks import one_error
from cli_runner import CLI, ROOT, cli_env, run_cli
from docs_support import Block, parse_command

sys.path.insert(0, str(CLI.parent))
from rebyte.cli import artifacts  # noqa: E402

ARTIFACT_COMMANDS = artifacts.COMMANDS
EXAMPLES = [(path, line) for path, row in ARTIFACT_COMMANDS.items() for line in row.examples]


@pytest.fixture
def cli(fake_rebyte, api_key, tmp_path):
    def run(*args, **kwargs):
        kwargs.setdefault("cwd", str(tmp_path))
        return run_cli(*args, base_url=fake_rebyte.base_url, api_key=api_key, **kwargs)

    return run


def finished_task(server, key: str, prompt: str = "Write the report [duration=0]") -> dict:
    """A task created through the CLI, as a user's would be: its local record keeps the
    workspace, which the API shows only in the create answer."""
    created = run_cli("create", "--prompt", prompt, base_url=server.base_url, api_key=key)
    assert created.returncode == 0, created.stderr
    return created.json()


def task_made_elsewhere(server, key: str, prompt: str = "Write the report [duration=0]") -> dict:
    """A task this machine did not create (straight on the server): no local record."""
    headers = {"API_KEY": key}
    created = requests.post(f"{server.base_url}/tasks", json={"prompt": prompt}, headers=headers)
    created.raise_for_status()
    return created.json()


def files_under(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_group_has_the_four_commands_each_with_runnable_examples():
    assert set(ARTIFACT_COMMANDS) == {
        ("artifacts", verb) for verb in ("list", "download", "upload", "delete")
    }
    for row in ARTIFACT_COMMANDS.values():
        assert 1 <= len(row.examples) <= 2


@pytest.mark.parametrize("path, line", EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_every_help_example_runs(fake_rebyte, api_key, tmp_path, path, line):
    command = parse_command(Block("help", 0, "bash", line), 0, line)
    assert command is not None and tuple(command.args[:2]) == path, line
    (tmp_path / "scripts").symlink_to(ROOT / "scripts", target_is_directory=True)
    (tmp_path / "notes.txt").write_text("notes\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    task = finished_task(fake_rebyte, api_key)
    args = [task["id"] if arg == "TASK_ID" else arg for arg in command.args]
    result = run_cli(*args, base_url=fake_rebyte.base_url, api_key=api_key, cwd=str(tmp_path))
    assert result.returncode == 0, (args, result.stderr)
    result.json() if "-q" not in args else None


def test_list_then_download_all(cli, fake_rebyte, api_key, tmp_path):
    task = finished_task(fake_rebyte, api_key)
    listed = cli("artifacts", "list", task["id"])
    assert listed.returncode == 0, listed.stderr
    assert [e["name"] for e in listed.json()["data"]] == ["output-1.bin", "report-1.md"]
    assert cli("artifacts", "list", task["id"], "-q").stdout.split() == [
        "output-1.bin",
        "report-1.md",
    ]
    done = cli("artifacts", "download", task["id"], "--out", "results")
    assert done.returncode == 0, done.stderr
    files = done.json()["files"]
    assert [(f["name"], f["path"], f["bytes"]) for f in files] == [
        ("output-1.bin", "results/output-1.bin", 65536),
        ("report-1.md", "results/report-1.md", files[1]["bytes"]),
    ]
    assert done.json()["refused"] == []
    for file in files:
        assert (tmp_path / file["path"]).read_bytes() == fake_rebyte.artifact_bytes(
            task["workspaceId"], file["name"]
        )
    assert "downloaded output-1.bin (64.0 KiB) to results/output-1.bin" in done.stderr
    assert "\r" not in done.stderr, "no bar redrawn in place off a terminal"


def test_download_one_by_name_and_the_overwrite_rule(cli, fake_rebyte, api_key, tmp_path):
    task = finished_task(fake_rebyte, api_key)
    (tmp_path / "report-1.md").write_text("mine")
    refused = cli("artifacts", "download", task["id"], "report-1.md")
    assert refused.returncode == 2, refused.stderr  # bad local input, as for a missing --file
    assert "'report-1.md' not downloaded" in refused.stderr and "exists" in refused.stderr
    assert "use --overwrite to replace it, or another --out" in refused.stderr
    assert (tmp_path / "report-1.md").read_text() == "mine"
    replaced = cli("artifacts", "download", task["id"], "report-1.md", "--overwrite", "-q")
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.split() == ["report-1.md"]
    assert (tmp_path / "report-1.md").read_bytes() == fake_rebyte.artifact_bytes(
        task["workspaceId"], "report-1.md"
    )


def test_hostile_names_are_reported_and_the_safe_ones_downloaded(cli, fake_rebyte, tmp_path):
    hostile = ["../x", "/etc/x", "a/../../x", "bad\x00nul", "esc\x1bname", "n" * 300]
    for name in hostile + ["Dup.txt", "dup.txt"]:
        fake_rebyte.add_artifact("ws-evil", name, data=b"evil")
    fake_rebyte.add_artifact("ws-evil", "safe.txt", data=b"safe")
    fake_rebyte.add_artifact("ws-evil", "reports/q1.pdf", data=b"pdf")
    (tmp_path / "out").mkdir()
    done = cli("artifacts", "download", "ws-evil", "--out", "out")
    assert done.returncode == 5, done.stderr
    document = done.json()
    assert sorted(f["name"] for f in document["files"]) == ["reports/q1.pdf", "safe.txt"]
    assert len(document["refused"]) == len(hostile) + 2
    assert len([line for line in done.stderr_lines if "not downloaded" in line]) == 8
    assert "\x1b" not in done.stderr and "\x00" not in done.stderr
    assert files_under(tmp_path) == ["out", "out/reports", "out/reports/q1.pdf", "out/safe.txt"]


def test_a_cut_download_leaves_nothing_and_a_second_run_succeeds(cli, fake_rebyte, tmp_path):
    fake_rebyte.add_artifact("ws-cut", "big.bin", size=2 * 1024 * 1024)
    fake_rebyte.inject("GET", r"/v1/workspaces/[^/]+/artifacts/[^/]+", "short-body")
    cut = cli("artifacts", "download", "ws-cut", "big.bin", "--max-retries", "0")
    assert cut.returncode == 6, cut.stderr
    assert "cut off" in cut.stderr and len(cut.stderr_lines) <= 3
    assert files_under(tmp_path) == []
    again = cli("artifacts", "download", "ws-cut", "big.bin")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "big.bin").stat().st_size == 2 * 1024 * 1024


def test_upload_then_delete_with_the_yes_rule(cli, fake_rebyte, api_key, tmp_path):
    task = finished_task(fake_rebyte, api_key)
    ws = task["workspaceId"]
    (tmp_path / "notes.txt").write_text("notes\n")
    up = cli("artifacts", "upload", task["id"], "notes.txt")
    assert up.returncode == 0, up.stderr
    assert up.json()["workspaceId"] == ws and up.json()["data"][0]["name"] == "notes.txt"
    assert fake_rebyte.artifact_bytes(ws, "notes.txt") == b"notes\n"
    missing = cli("artifacts", "upload", task["id"], "notes.txt", "missing.txt")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    fake_rebyte.clear_log()
    unconfirmed = cli("artifacts", "delete", task["id"], "notes.txt")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    both = cli("artifacts", "delete", task["id"], "notes.txt", "--all", "--yes")
    assert both.returncode == 2
    assert not fake_rebyte.requests(), "nothing is sent before the command is confirmed"
    deleted = cli("artifacts", "delete", task["id"], "notes.txt", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.json()["data"] == [{"name": "notes.txt", "deleted": True}]
    assert "notes.txt" not in fake_rebyte.artifact_names(ws)
    gone = cli("artifacts", "delete", task["id"], "notes.txt", "--yes")
    assert gone.returncode == 4 and "artifacts list" in gone.stderr
    cleared = cli("artifacts", "delete", task["id"], "--all", "--yes")
    assert cleared.returncode == 0 and fake_rebyte.artifact_names(ws) == []


def test_create_and_follow_up_wait_then_download(cli, fake_rebyte, tmp_path):
    created = cli("create", "--prompt", "Write the report", "--wait", "--download", "results")
    assert created.returncode == 0, created.stderr
    task = created.json()
    assert [a["path"] for a in task["artifacts"]] == [
        "results/output-1.bin",
        "results/report-1.md",
    ]
    assert files_under(tmp_path / "results") == ["output-1.bin", "report-1.md"]
    (tmp_path / "results" / "report-1.md").write_text("edited by me")
    followed = cli(
        "follow-up", task["id"], "--prompt", "And a second one", "--wait", "--download", "results"
    )
    # The first prompt's files are there already: kept, with a note; the exit code is the
    # follow-up's own (an exit 2 would read as "nothing was sent" and invite a resend).
    assert followed.returncode == 0, followed.stderr
    names = [a["name"] for a in followed.json()["artifacts"]]
    assert names == ["output-2.bin", "report-2.md"]
    assert "'report-1.md' kept as it was" in followed.stderr
    assert f"artifacts download {task['id']} NAME --overwrite" in followed.stderr
    assert "another --download folder" in followed.stderr
    assert (tmp_path / "results" / "report-1.md").read_text() == "edited by me"


def test_create_wait_download_takes_the_workspace_from_its_create_answer(
    cli, fake_rebyte, api_key, tmp_path
):
    """The documented task view has no workspaceId: the answer the command holds does."""
    no_record = cli_env(fake_rebyte.base_url, api_key, REBYTE_RECORD="off")
    created = cli("create", "--prompt", "Write it", "--wait", "--download", "out", env=no_record)
    assert created.returncode == 0, created.stderr
    assert files_under(tmp_path / "out") == ["output-1.bin", "report-1.md"]
    assert "workspaceId" not in fake_rebyte._task_json(
        next(iter(fake_rebyte._tasks.values())), fake_rebyte._now()
    )


def test_a_task_made_elsewhere_needs_its_workspace_named(cli, fake_rebyte, api_key, tmp_path):
    task = task_made_elsewhere(fake_rebyte, api_key)
    refused = cli("artifacts", "list", task["id"])
    assert refused.returncode == 2
    error = one_error(refused)
    assert "workspace of task" in error and "--workspace WORKSPACE_ID" in error
    assert "HTTP 200" not in error and "malformed" not in error.lower()
    listed = cli("artifacts", "list", task["id"], "--workspace", task["workspaceId"], "-q")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["output-1.bin", "report-1.md"]
    followed = cli(
        "follow-up",
        task["id"],
        "--prompt",
        "Again",
        "--wait",
        "--download",
        "got",
        "--workspace",
        task["workspaceId"],
    )
    assert followed.returncode == 0, followed.stderr
    assert "output-2.bin" in files_under(tmp_path / "got")


def test_a_workspace_id_needs_no_record(cli, fake_rebyte, api_key):
    task = task_made_elsewhere(fake_rebyte, api_key)
    listed = cli("artifacts", "list", task["workspaceId"], "-q")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["output-1.bin", "report-1.md"]


def test_download_without_wait_is_refused_before_anything_is_sent(cli, fake_rebyte):
    refused = cli("create", "--prompt", "Write the report", "--download", "results")
    assert refused.returncode == 2 and "--wait" in refused.stderr
    assert fake_rebyte.tasks_created == 0


def test_a_terminal_gets_a_byte_bar_redrawn_in_place(fake_rebyte, api_key, tmp_path):
    """stderr on a pseudo-terminal: the bar is drawn with carriage returns, then cleared."""
    import os
    import pty
    import subprocess

    from cli_runner import cli_env

    fake_rebyte.add_artifact("ws-tty", "big.bin", size=3 * 1024 * 1024)
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, str(CLI), "artifacts", "download", "ws-tty", "--out", "out"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=follower,
            env=cli_env(fake_rebyte.base_url, api_key, NO_COLOR="1"),
            cwd=str(tmp_path),
            timeout=60,
        )
        os.close(follower)
        follower = None
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    text = shown.decode("utf-8", errors="replace")
    assert "\r\x1b[K" in text and "downloading big.bin [" in text and "3.0 MiB / 3.0 MiB" in text
