"""Install the bundle the way the README says, with the `skills` CLI from npm, and run it.

The README documents the git form for a local checkout,
`npx skills add file:///path/to/checkout --skill skill-as-a-service ...`, which
copies committed files only (a plain path would also copy `.venv/` and caches).
This test does exactly that, on a temporary git repository holding the files a
commit of the working tree would hold (in CI's clean clone: the tracked files),
plus some uncommitted clutter that must not travel:

1. `npm install skills@PINNED` into a temporary folder;
2. `skills add file://<repo> --skill skill-as-a-service -a claude-code codex opencode -y`
   in a fresh temporary project, with a temporary HOME, no telemetry, no prompt;
3. the skill is where Claude Code, Codex and OpenCode look, holds the committed
   files and nothing else (under 2 MiB: its size is printed), passes `agentskills
   validate`, and its CLI runs from another directory: `--help`, and a `create`
   against the local server.

Skipped, saying why, when node/npm/npx/git are missing or the npm registry
cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import cli_env
from docs_support import ROOT, SKILL_NAME, bundle_files, copy_bundle, read

# skills >= 1.5.19 needs Node 22; 1.5.18 is the newest that runs on Node 20 (and 18+).
SKILLS_VERSION = "1.5.18"
AGENTS = ["claude-code", "codex", "opencode"]
NPM_TIMEOUT = 180
ADD_TIMEOUT = 120
NETWORK_TROUBLE = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|EHOSTUNREACH"
    r"|network|socket hang up|fetch failed|getaddrinfo|proxy",
    re.I,
)
# What an install may weigh: every agent's skill folder gets the whole committed tree.
MAX_INSTALL_BYTES = 2 * 1024 * 1024
MAX_FILE_BYTES = 256 * 1024
# Made in the checkout but never committed: none of it may reach an agent's folder.
CLUTTER = [".venv/pyvenv.cfg", "scripts/__pycache__/rebyte_cli.cpython-311.pyc", ".pytest_cache/x"]

pytestmark = pytest.mark.timeout(NPM_TIMEOUT + ADD_TIMEOUT + 120)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not on PATH: the install test needs Node.js (npm, npx) and git")
    return found


def node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    match = re.match(r"v(\d+)\.", version.stdout.strip())
    return int(match.group(1)) if match else 0


def quiet_env(home: Path) -> dict:
    """The environment for npm and skills: a private HOME, no telemetry, no prompts, no color."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "CLAUDE_", "CODEX_", "OPENCODE_", "REBYTE_"))
    }
    env.update(
        HOME=str(home),
        DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        NO_COLOR="1",
        CI="1",
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
    )
    return env


@pytest.fixture(scope="module")
def skills_cli(tmp_path_factory) -> str:
    """The pinned `skills` CLI, installed from npm into a temporary folder."""
    node, npm = tool("node"), tool("npm")
    tool("npx")
    tool("git")
    if node_major(node) < 18:
        pytest.skip(f"skills@{SKILLS_VERSION} needs Node 18 or newer")
    prefix = tmp_path_factory.mktemp("npm")
    env = dict(
        os.environ,
        npm_config_update_notifier="false",
        npm_config_fetch_retries="1",  # an unreachable registry: skip in seconds, not minutes
        npm_config_fetch_retry_mintimeout="2000",
        npm_config_fetch_retry_maxtimeout="5000",
    )
    try:
        installed = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                f"skills@{SKILLS_VERSION}",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install took over {NPM_TIMEOUT}s: is the npm registry reachable?")
    said = installed.stdout + installed.stderr
    if installed.returncode != 0:
        trouble = NETWORK_TROUBLE.search(said)
        if trouble:
            line = next(ln for ln in said.splitlines() if trouble.group(0) in ln)
            pytest.skip(f"the npm registry cannot be reached ({line.strip()[:200]})")
        pytest.fail(f"npm install skills@{SKILLS_VERSION} failed:\n{said}")
    cli = prefix / "node_modules" / ".bin" / "skills"
    assert cli.exists(), said
    return str(cli)


def committed_checkout(path: Path) -> list:
    """A git repository holding the bundle as a commit, plus uncommitted clutter."""
    names = copy_bundle(path)
    git = tool("git")
    quiet = {"capture_output": True, "text": True, "timeout": 60, "check": True, "cwd": path}
    subprocess.run([git, "init", "-q"], **quiet)
    subprocess.run([git, "add", "-A"], **quiet)
    subprocess.run(
        [
            git,
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            "bundle",
        ],
        **quiet,
    )
    for name in CLUTTER:  # after the commit, and mostly ignored by .gitignore anyway
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text("must not be copied\n")
    return names


def files_under(folder: Path) -> set:
    return {
        str(Path(root, name).relative_to(folder))
        for root, _, names in os.walk(folder, followlinks=True)
        for name in names
    }


def folder_bytes(folder: Path, names) -> int:
    return sum((folder / name).stat().st_size for name in names)


def largest(folder: Path, names, count: int = 5) -> str:
    sizes = sorted(((folder / n).stat().st_size, n) for n in names)[-count:]
    return ", ".join(f"{name} {size / 1024:.0f} KiB" for size, name in reversed(sizes))


def test_the_bundle_commits_nothing_large():
    """No test data, caches or virtual environments in the tree an install copies."""
    names = bundle_files()
    large = [n for n in names if (ROOT / n).stat().st_size > MAX_FILE_BYTES]
    assert not large, f"files over {MAX_FILE_BYTES // 1024} KiB: {largest(ROOT, large)}"
    total = folder_bytes(ROOT, names)
    assert total <= MAX_INSTALL_BYTES, f"{total / 1024:.0f} KiB; largest: {largest(ROOT, names)}"
    for name in names:
        parts = Path(name).parts
        assert not {".venv", ".venv39", ".venv-audit", "__pycache__", "node_modules"} & set(
            parts
        ), name
        assert not name.endswith((".pyc", ".whl", ".tar.gz", ".zip")), name


def test_readme_documents_the_install_this_test_runs():
    readme = read("README.md")
    assert f"npx skills add OWNER/REPO --skill {SKILL_NAME}" in readme
    assert f'npx skills add "file://$PWD" --skill {SKILL_NAME}' in readme
    assert "-a claude-code codex opencode -y" in readme
    assert "What an install copies" in readme and SKILLS_VERSION in readme


def test_skills_add_installs_a_working_copy_for_each_agent(
    skills_cli, tmp_path, make_fake_rebyte, api_key, record_property
):
    checkout = tmp_path / "checkout"
    committed = set(committed_checkout(checkout))
    project, home, elsewhere = tmp_path / "project", tmp_path / "home", tmp_path / "elsewhere"
    for folder in (project, home, elsewhere):
        folder.mkdir()

    added = subprocess.run(
        [skills_cli, "add", checkout.as_uri(), "--skill", SKILL_NAME, "-a", *AGENTS, "-y"],
        cwd=project,
        env=quiet_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=ADD_TIMEOUT,
    )
    said = f"stdout:\n{added.stdout}\nstderr:\n{added.stderr}"
    assert added.returncode == 0, said

    # Where each agent looks: Codex and OpenCode read .agents/skills, Claude Code
    # .claude/skills (a symlink to the same folder).
    universal = project / ".agents" / "skills" / SKILL_NAME
    claude = project / ".claude" / "skills" / SKILL_NAME
    found = sorted(str(p.relative_to(project)) for p in project.rglob("SKILL.md"))
    for folder in (universal, claude):
        assert (folder / "SKILL.md").is_file(), f"no {folder.relative_to(project)}; found {found}"
    assert universal.resolve() == claude.resolve() or files_under(claude) == files_under(universal)

    # What was copied: the committed files, nothing more (no clutter, no .git).
    copied = files_under(universal)
    assert copied == committed, (
        f"not committed but copied: {sorted(copied - committed)}; "
        f"committed but missing: {sorted(committed - copied)}"
    )
    for part in (".venv", "__pycache__", ".git", ".pytest_cache"):
        assert not any(part in Path(name).parts for name in copied), part
    installed = folder_bytes(universal, copied)
    print(f"installed skill folder: {installed / 1024:.0f} KiB in {len(copied)} files")
    record_property("installed_bytes", installed)
    assert installed <= MAX_INSTALL_BYTES, f"{installed // 1024} KiB: {largest(universal, copied)}"

    validator = Path(sys.executable).parent / "agentskills"
    if validator.exists():
        checked = subprocess.run(
            [str(validator), "validate", str(universal)], capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

    # The installed CLI runs from any directory, with the python3 an agent would use.
    python3 = shutil.which("python3") or sys.executable
    for folder in (universal, claude):
        helped = subprocess.run(
            [python3, str(folder / "scripts" / "rebyte_cli.py"), "--help"],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert helped.returncode == 0, helped.stderr
        assert "exit codes:" in helped.stdout

    server = make_fake_rebyte(prompt_duration=0.3)
    created = subprocess.run(
        [
            sys.executable,
            str(claude / "scripts" / "rebyte_cli.py"),
            "create",
            "--prompt",
            "Hello from an installed skill",
            "--wait",
            "--interval",
            "0.2",
        ],
        cwd=elsewhere,
        env=cli_env(server.base_url, api_key),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["result"] == "Result for: Hello from an installed skill"
    assert server.tasks_created == 1
