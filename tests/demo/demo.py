"""The main job, end to end, against the embedded local server: `make demo`.

Starts tests/fake_rebyte.py on a free loopback port, points the CLI at it
with REBYTE_BASE_URL, and runs the lifecycle a user would: upload a file,
create a task with a skill and the file, show its URL, wait, follow up and
wait for that prompt, share, list, delete. Then the rest of the API: an Agent
Computer with a task in it, the files a task leaves (artifacts), a webhook, and
the local record of what was created. Each step shows the command line it
runs, then what the CLI printed. Last, the round trip of a local repository: its
uncommitted state handed to an agent, the change it left seen and applied. The local
record goes to a temporary folder.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "scripts" / "rebyte_cli.py"
SERVER = ROOT / "tests" / "fake_rebyte.py"
DEMO_KEY = "rbk_demo_local_only"


def start_server() -> tuple:
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--key", DEMO_KEY, "--prompt-duration", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base_url = server.stdout.readline().strip()
    if not base_url.startswith("http://127."):
        server.kill()
        raise SystemExit(f"demo: the local server did not start (it said {base_url!r})")
    return server, base_url


def step(title: str, *args: str, env: dict) -> dict:
    """Run one CLI command, show it and its output, and return its JSON."""
    shown = " ".join(shlex.quote(a) for a in ("python3", "scripts/rebyte_cli.py", *args))
    heading = f"== {title}"
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        heading = f"\033[1m{heading}\033[0m"
    print(f"\n{heading}\n$ {shown}", flush=True)
    completed = subprocess.run(
        [sys.executable, str(CLI), *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    print(completed.stdout.rstrip(), flush=True)
    if completed.returncode != 0:
        raise SystemExit(f"demo: `{shown}` exited {completed.returncode}")
    return json.loads(completed.stdout) if completed.stdout.strip() else {}


def lifecycle(step, folder: Path, say=print) -> None:
    """The demo's steps; `step(title, *args)` runs one CLI command and returns its JSON.

    tests/bench/run_bench.py runs the same steps to count the bytes the CLI prints.
    """
    data = Path(folder) / "sales.csv"
    data.write_text("region,revenue\nnorth,120\nsouth,95\n", encoding="utf-8")
    ref = step("Upload a file", "upload", str(data))
    task = step(
        "Create a task with a skill and the file",
        "create",
        "--prompt",
        "Summarise sales.csv by region",
        "--skills",
        "data-analysis-workflow",
        "--file-ref",
        f"{ref['id']}:{ref['filename']}",
    )
    say(f"\nThe live URL to give the user: {task['url']}")
    step("Wait for it and read the agent's answer", "wait", task["id"])
    step(
        "Send a follow-up and wait for that prompt",
        "follow-up",
        task["id"],
        "--prompt",
        "Now chart revenue by region",
        "--wait",
    )
    step("Share it publicly", "share", task["id"])
    step("List recent tasks", "list", "--limit", "5")
    step("Delete it", "delete", task["id"], "--yes")


def the_rest(step, folder: Path, say=print) -> None:
    """Agent Computers, artifacts, webhooks and the local record, after the lifecycle."""
    computer = step(
        "Create an Agent Computer and wait until it is ready",
        "computer",
        "create",
        "--name",
        "demo-box",
        "--wait",
    )
    task = step(
        "Run a task in it (no provisioning) and fetch the files it made",
        "create",
        "--prompt",
        "Write the quarterly report",
        "--computer",
        computer["id"],
        "--wait",
        "--download",
        str(Path(folder) / "results"),
    )
    say(f"\nDownloaded: {', '.join(a['name'] for a in task.get('artifacts', []))}")
    step("List the files in its workspace", "artifacts", "list", task["id"])
    hook = step(
        "Register a webhook for finished tasks",
        "webhook",
        "add",
        "https://example.com/hooks/rebyte",
        "--event",
        "task.completed",
        "task.failed",
    )
    step("List the webhooks", "webhook", "list")
    step("What this machine created (the local record)", "recent", "--limit", "3", "--offline")
    step("Remove the webhook", "webhook", "delete", hook["id"], "--yes")
    step("Delete the computer", "computer", "delete", computer["id"], "--yes")


def make_project(folder: Path) -> Path:
    """A small git repository with work not yet committed: what the user has in hand."""
    project = folder / "project"
    (project / "src").mkdir(parents=True)
    identity = ["-c", "user.name=Demo", "-c", "user.email=demo@example.invalid"]

    def git(*args: str) -> None:
        subprocess.run(["git", *identity, *args], cwd=project, check=True, capture_output=True)

    git("init", "-q")
    (project / "README.md").write_text("# Parser\n\nParses things.\n", encoding="utf-8")
    (project / "src" / "parser.py").write_text("def parse(text):\n    return text.split()\n")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    with open(project / "src" / "parser.py", "a", encoding="utf-8") as handle:
        handle.write("\n\ndef parse_lines(text):\n    return text.splitlines()\n")
    return project


def round_trip(step, folder: Path, say=print) -> None:
    """A local repository to a cloud agent and its change back (needs git)."""
    if shutil.which("git") is None:
        say("\n(git is not installed: the local repository round trip is skipped)")
        return
    project = make_project(Path(folder))
    task = step(
        "Hand the local repository (uncommitted edit included) to an agent",
        "create",
        "--local-repo",
        str(project),
        "--prompt",
        "Add a line about parse_lines to the README",
        "--wait",
    )
    step("See the change it left", "diff", task["id"], "--stat")
    step(
        "Check it applies (changes nothing)",
        "apply",
        task["id"],
        "--repo",
        str(project),
        "--dry-run",
    )
    step("Apply it to the local tree", "apply", task["id"], "--repo", str(project))
    say(f"\nREADME.md now ends: {(project / 'README.md').read_text().splitlines()[-1]!r}")


def main() -> int:
    server, base_url = start_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBYTE_")}
    env.update(REBYTE_API_KEY=DEMO_KEY, REBYTE_BASE_URL=base_url, NO_PROXY="127.0.0.1,127.0.0.2")
    print(f"Local Rebyte-compatible server at {base_url} (nothing leaves this machine).")
    try:
        with tempfile.TemporaryDirectory() as folder:
            env["XDG_STATE_HOME"] = str(Path(folder) / "state")
            run = lambda title, *args: step(title, *args, env=env)  # noqa: E731
            lifecycle(run, Path(folder))
            the_rest(run, Path(folder))
            round_trip(run, Path(folder))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print("\nDemo finished: every step succeeded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
