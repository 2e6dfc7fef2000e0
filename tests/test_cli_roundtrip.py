"""The local repository round trip through the CLI, over real HTTP (issue 20).

`create --local-repo`, `diff` and `apply` against the local server, whose simulated
agent (tests/fake_agent.py) clones the uploaded bundle and leaves the change that the
prompt's markers ask for. Each test builds a repository of its own, never seen by the
library tests: uncommitted and untracked work, odd names, binary files, ignored files,
secrets. What must hold: exactly the agent's change comes back, the user's `.git` is
never written, and a conflict, a hostile patch or a missing one changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import fake_agent
import pytest
from cli_checks import one_error, runner
from cli_runner import CLI
from git_repos import fingerprint, git, make_repo, tree_contents, write

sys.path.insert(0, str(CLI.parent))
from rebyte import record  # noqa: E402
from rebyte.cli.roundtrip import plain_path, terminal_safe  # noqa: E402

QUICK = "[duration=0]"  # the local server's prompt ends at once

UNSEEN_FILES = {
    "README.txt": "Project notes\nsecond line\nthird line\nfourth line\nfifth line\n",
    "lib/core/engine.py": "def run():\n    return 'engine'\n",
    "lib/core/helpers.py": "def helper():\n    return 'help'\n",
    "media/icon.bin": bytes(range(256)) * 3,
    "zz_last.txt": "the last text file\n",
    ".gitignore": "build/\n*.log\n",
}


def unseen_repo(root: Path) -> Path:
    """A repository with committed, staged, unstaged, untracked, deleted, ignored and
    oddly named files: the state the snapshot must carry exactly."""
    repo = make_repo(root, UNSEEN_FILES)
    write(repo, {"lib/core/engine.py": "def run():\n    return 'engine, edited locally'\n"})
    write(repo, {"docs/new guide ü.md": "# Untracked guide with a unicode name\n"})
    write(repo, {"lib/staged.py": "STAGED = True\n"})
    git(repo, "add", "lib/staged.py")
    (repo / "lib/core/helpers.py").unlink()  # deleted, not staged
    write(repo, {"build/output.o": b"\x7fELF ignored", "debug.log": "ignored\n"})
    return repo


@pytest.fixture
def cli(fake_rebyte, api_key):
    return runner(fake_rebyte, api_key)


def round_trip_task(cli, repo: Path, markers: str, *options: str) -> dict:
    created = cli(
        "create", "--local-repo", str(repo), "--prompt", f"Improve it {markers} {QUICK}",
        "--wait", *options,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return created.json()


def uploads(server) -> list:
    return server.requests("POST", "/v1/files")


def test_the_round_trip_brings_back_exactly_the_agents_change(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    before_tree = tree_contents(repo)
    git_files_before = fingerprint(repo)[0]
    dry = cli("create", "--local-repo", str(repo), "--prompt", "Improve it", "--dry-run").json()
    task = round_trip_task(cli, repo, "[edit][add][binary][delete][rename]")
    assert task["snapshot"] == record.find_task(task["id"])["snapshot"]
    assert task["snapshot"] == dry["localRepo"]["snapshot"]  # the dry run named what was sent
    assert fingerprint(repo)[0] == git_files_before  # the snapshot only read .git
    recent = cli("recent", "--offline").json()["data"]
    assert [e["prompt"] for e in recent if e.get("id") == task["id"]] == [
        f"Improve it [edit][add][binary][delete][rename] {QUICK}"
    ]  # the user's words, not the block the CLI adds

    stat = cli("diff", task["id"], "--stat").json()
    by_status = {}
    for entry in stat["files"]:
        by_status.setdefault(entry["status"], []).append(entry)
    assert sorted(by_status) == ["added", "deleted", "modified", "renamed"]
    applied = cli("apply", task["id"], cwd=str(repo))
    assert applied.returncode == 0, applied.stderr
    assert applied.json()["status"] == "applied"
    after = tree_contents(repo)

    assert after["README.txt"] == before_tree["README.txt"] + fake_agent.EDIT_LINE.encode()
    assert after[fake_agent.ADDED_PATH] == fake_agent.ADDED_TEXT.encode()
    assert after[fake_agent.BINARY_PATH] == fake_agent.BINARY_BYTES
    (deleted,) = [e["path"] for e in by_status["deleted"]]
    (renamed,) = by_status["renamed"]
    assert deleted not in after and renamed["from"] not in after
    assert after[renamed["path"]] == before_tree[renamed["from"]]
    assert os.path.basename(renamed["path"]) == "renamed-" + os.path.basename(renamed["from"])
    new = {fake_agent.ADDED_PATH, fake_agent.BINARY_PATH, renamed["path"]}
    untouched = set(before_tree) - {"README.txt", deleted, renamed["from"]}
    assert set(after) == untouched | new | {"README.txt"}
    assert {name: after[name] for name in untouched} == {n: before_tree[n] for n in untouched}
    # What the agent saw was the working folder, not HEAD: the local edit, the untracked
    # file (with its name) and the staged one, never the ignored files or the deleted one.
    assert b"edited locally" in after["lib/core/engine.py"]
    assert "docs/new guide ü.md" in after and "lib/staged.py" in after
    assert after["build/output.o"] == b"\x7fELF ignored"  # still here, never sent
    seen = paths_in_snapshot(task["id"], tmp_path)
    assert "build/output.o" not in seen and "debug.log" not in seen
    assert "lib/core/helpers.py" not in seen and "docs/new guide ü.md" in seen
    assert fingerprint(repo)[0] == git_files_before  # apply wrote the tree, never .git

    again = cli("apply", task["id"], cwd=str(repo))
    assert again.returncode == 0 and again.json()["status"] == "already-applied"
    assert "already applied" in again.stderr and tree_contents(repo) == after


def paths_in_snapshot(task_id: str, scratch: Path) -> list:
    """The paths of the snapshot commit in the bundle the record keeps for the task (the
    bytes that were uploaded: what the agent saw)."""
    entry = record.find_task(task_id)
    bundle, sha = Path(entry["bundle"]), entry["snapshot"]
    clone = scratch / "inspect"
    git(scratch, "clone", "-q", str(bundle), str(clone))
    listing = git(clone, "ls-tree", "-r", "--name-only", "-z", sha)
    return [name.decode() for name in listing.split(b"\0") if name]


def test_diff_prints_the_patch_its_files_and_a_summary(cli, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, "[edit][binary]")
    patch = cli("diff", task["id"])
    assert patch.returncode == 0 and patch.stdout.startswith("diff --git ")
    assert "GIT binary patch" in patch.stdout
    names = cli("diff", task["id"], "-q")
    assert names.stdout.splitlines() == ["README.txt", fake_agent.BINARY_PATH]
    stat = cli("diff", task["id"], "--stat").json()
    assert stat["insertions"] == 1 and stat["summary"].startswith("2 files changed")
    assert {"path": fake_agent.BINARY_PATH, "status": "added", "binary": True} in stat["files"]


def test_secrets_stop_the_command_with_their_names_and_nothing_is_sent(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    write(repo, {".env.local": "TOKEN=abc\n", "keys/deploy": "-----BEGIN PRIVATE KEY-----\nx\n"})
    state = fingerprint(repo)
    refused = cli("create", "--local-repo", str(repo), "--prompt", "Go")
    assert refused.returncode == 2
    message = one_error(refused)
    assert ".env.local" in message and "keys/deploy" in message
    assert "--allow-secrets" in message and "nothing was sent" in message
    assert fake_rebyte.requests(listener=None) == [] and fingerprint(repo) == state
    dry = cli("create", "--local-repo", str(repo), "--prompt", "Go", "--allow-secrets", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.json()["localRepo"]["files"] >= 8 and fake_rebyte.requests(listener=None) == []


def test_the_skills_own_install_in_the_project_is_not_sent(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    before = cli("create", "--local-repo", str(repo), "--prompt", "Go", "--dry-run").json()
    install = repo / ".agents" / "skills" / "skill-as-a-service"
    shutil.copytree(CLI.parent, install / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CLI.parent.parent / "SKILL.md", install / "SKILL.md")
    dry = cli("create", "--local-repo", str(repo), "--prompt", "Go", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    summary = dry.json()["localRepo"]
    assert summary["leftOut"] == [".agents/skills/skill-as-a-service/"]
    assert "leftOut" not in before["localRepo"]
    assert (summary["files"], summary["bytes"]) == (
        before["localRepo"]["files"], before["localRepo"]["bytes"]
    )  # fmt: skip
    assert "left out this skill's own untracked install(s): .agents/skills/" in dry.stderr
    assert fake_rebyte.requests(listener=None) == []


def test_a_conflict_names_the_files_and_changes_nothing(cli, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, "[conflict]")
    readme = repo / "README.txt"
    readme.write_text("Project notes, edited here meanwhile\n" + readme.read_text()[14:])
    before = tree_contents(repo), fingerprint(repo)
    for extra in ((), ("--dry-run",)):
        conflict = cli("apply", task["id"], "--repo", str(repo), *extra)
        assert conflict.returncode == 9, conflict.stderr
        message = one_error(conflict)
        assert "README.txt" in message and "nothing was changed" in message
        assert conflict.stdout == "" and (tree_contents(repo), fingerprint(repo)) == before


def test_a_later_edit_merges_three_way_with_the_kept_snapshot(cli, tmp_path):
    """The README's snapshot state was never committed: only the recorded bundle has it."""
    repo = unseen_repo(tmp_path / "project")
    readme = repo / "README.txt"
    readme.write_text(readme.read_text().replace("second line", "second line (wip)"))
    task = round_trip_task(cli, repo, "[edit]")
    readme.write_text(readme.read_text().replace("fourth line", "fourth line (later)"))
    dry = cli("apply", task["id"], "--dry-run", cwd=str(repo))
    assert dry.json()["threeWay"] is True and "(wip)" in readme.read_text()
    applied = cli("apply", task["id"], cwd=str(repo))
    assert applied.returncode == 0, applied.stderr
    text = readme.read_text()
    assert "second line (wip)" in text and "fourth line (later)" in text
    assert text.endswith(fake_agent.EDIT_LINE) and "three-way" in applied.stderr


@pytest.mark.parametrize("marker, named", [("[hostile]", ".git/hooks"), ("[symlink]", "symlink")])
def test_a_hostile_patch_is_refused_whole(cli, tmp_path, marker, named):
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, f"[edit]{marker}")
    before = tree_contents(repo), fingerprint(repo)
    refused = cli("apply", task["id"], cwd=str(repo))
    assert refused.returncode == 5, refused.stderr
    assert named in one_error(refused) and "nothing was applied" in one_error(refused)
    assert (tree_contents(repo), fingerprint(repo)) == before
    assert not (tmp_path / "outside.txt").exists()


def test_a_task_that_left_no_patch_says_what_it_left(cli, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, "[no-patch]")
    for command in (("diff", task["id"]), ("apply", task["id"], "--repo", str(repo))):
        missing = cli(*command)
        assert missing.returncode == 8, missing.stderr
        message = one_error(missing)
        assert "left no rebyte-change.patch" in message and "report-1.md" in message
        assert missing.stdout == ""


def test_attempts_share_one_upload_and_compare_side_by_side(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    made = cli(
        "create", "--local-repo", str(repo), "--prompt", f"Try [edit] {QUICK}",
        "--attempts", "3", "-q",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    ids = [line.split("\t")[0] for line in made.stdout.splitlines()]
    assert len(set(ids)) == 3
    assert len(uploads(fake_rebyte)) == 1
    bodies = [entry["json"] for entry in fake_rebyte.requests("POST", "/v1/tasks")]
    assert len(bodies) == 3 and len({json.dumps(b["files"]) for b in bodies}) == 1
    assert [record.find_task(task_id)["attempt"] for task_id in ids] == [1, 2, 3]
    assert len({record.find_task(task_id)["snapshotFile"] for task_id in ids}) == 1
    waited = cli("wait", *ids, "-q")
    assert waited.returncode == 0, waited.stderr
    side = cli("diff", *ids, "--stat", "-q")
    assert side.returncode == 0
    assert side.stdout.splitlines() == [f"{task_id}\t1\t+1\t-0" for task_id in ids]


def test_a_follow_up_asks_for_the_whole_change_again(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, "[edit]")
    follow = cli("follow-up", task["id"], "--prompt", f"Also [add] {QUICK}", "--wait")
    assert follow.returncode == 0, follow.stderr
    sent = fake_rebyte.requests("POST", f"/v1/tasks/{task['id']}/prompts")[0]["json"]["prompt"]
    assert sent.startswith("Also [add]") and "rebyte-change.patch" in sent
    names = cli("diff", task["id"], "-q").stdout.splitlines()
    assert names == ["README.txt", fake_agent.ADDED_PATH]  # the first prompt's edit too


def test_apply_after_a_follow_up_takes_only_what_is_new(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, "[edit]")
    assert cli("apply", task["id"], cwd=str(repo)).returncode == 0
    readme = (repo / "README.txt").read_bytes()
    follow = cli("follow-up", task["id"], "--prompt", f"Again [edit] [add] {QUICK}", "--wait")
    assert follow.returncode == 0, follow.stderr
    whole = cli("diff", task["id"]).stdout
    assert whole.count(fake_agent.EDIT_LINE.strip()) == 2  # the whole change, both edits

    applied = cli("apply", task["id"], cwd=str(repo))

    assert applied.returncode == 0, applied.stderr
    document = applied.json()
    assert document["status"] == "applied" and document["sinceEarlierApply"] is True
    assert sorted(document["files"]) == sorted(["README.txt", fake_agent.ADDED_PATH])
    assert "what is new since it was last applied" in applied.stderr
    assert (repo / "README.txt").read_bytes() == readme + fake_agent.EDIT_LINE.encode()
    assert (repo / fake_agent.ADDED_PATH).read_text() == fake_agent.ADDED_TEXT
    again = cli("apply", task["id"], cwd=str(repo))
    assert again.returncode == 0 and again.json()["status"] == "already-applied"


def test_an_apply_that_cannot_keep_its_patch_still_applies_and_says_so(cli, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, "[edit]")
    blocked = Path(record.record_dir()) / "applied"  # this test's own state folder
    blocked.write_text("a file where the folder should be")
    applied = cli("apply", task["id"], cwd=str(repo))
    assert applied.returncode == 0 and applied.json()["status"] == "applied"
    assert "could not keep the applied patch" in applied.stderr


def test_a_batch_spec_takes_a_local_repo(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    specs = tmp_path / "specs.jsonl"
    specs.write_text(
        json.dumps({"prompt": f"A [edit] {QUICK}", "localRepo": "project"})
        + "\n"
        + json.dumps({"prompt": f"B [add] {QUICK}", "localRepo": "project", "name": "b"})
        + "\n",
        encoding="utf-8",
    )
    done = cli("batch", str(specs), "--wait", "-q")
    assert done.returncode == 0, done.stderr
    rows = sorted(line.split("\t") for line in done.stdout.splitlines())  # as they ended
    ids = [row[2] for row in rows]
    assert len(uploads(fake_rebyte)) == 1
    stats = cli("diff", *ids, "--stat").json()
    assert [s["files"][0]["path"] for s in stats] == ["README.txt", fake_agent.ADDED_PATH]
    assert cli("apply", ids[1], "--repo", str(repo)).returncode == 0


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.mkdir(), "not inside a git working folder"),
        (lambda p: make_repo(p, {"a.txt": "x\n"}, commit=False), "no commit"),
    ],
    ids=["not a repository", "no commit yet"],
)
def test_a_folder_that_cannot_be_snapshotted_is_one_line(cli, fake_rebyte, tmp_path, make, words):
    folder = tmp_path / "folder"
    make(folder)
    refused = cli("create", "--local-repo", str(folder), "--prompt", "Go")
    assert refused.returncode == 2 and words in one_error(refused)
    assert fake_rebyte.requests(listener=None) == []


def test_without_git_it_says_so(cli, fake_rebyte, tmp_path):
    repo = unseen_repo(tmp_path / "project")
    no_git = {"PATH": str(Path(sys.executable).parent)}
    refused = cli("create", "--local-repo", str(repo), "--prompt", "Go", env_extra=no_git)
    assert refused.returncode == 2 and "git is not installed" in one_error(refused)
    assert fake_rebyte.requests(listener=None) == []


@pytest.mark.parametrize(
    "extra, words",
    [
        (("--attempts", "2"), "--attempts goes with --local-repo"),
        (("--local-repo", ".", "--github-url", "o/r"), "give one"),
        (("--local-repo", ".", "--attempts", "2", "--watch"), "--attempts goes with --wait"),
        (("--local-repo", ".", "--attempts", "2", "--workspace", "ws-1"), "a workspace per"),
    ],
)
def test_local_repo_options_that_do_not_go_together(cli, fake_rebyte, tmp_path, extra, words):
    refused = cli("create", "--prompt", "Go", *extra, cwd=str(tmp_path))
    assert refused.returncode == 2 and words in one_error(refused)
    assert fake_rebyte.requests(listener=None) == []


def test_a_patch_shown_on_a_terminal_cannot_steer_it():
    assert terminal_safe(b"+ok\x1b]0;owned\x07\n\tx\n") == b"+ok\\x1b]0;owned\\x07\n\tx\n"
    assert plain_path("a\nb\tc.txt") == "a\\x0ab\\x09c.txt"


def test_git_failing_on_this_machine_during_apply_is_one_line_and_changes_nothing(cli, tmp_path):
    """A three-way merge needs `git init` in scratch: a git that cannot is the machine's
    trouble (exit 2, what to look at), not a bug of the CLI (exit 70)."""
    repo = unseen_repo(tmp_path / "project")
    task = round_trip_task(cli, repo, "[edit]")
    readme = repo / "README.txt"
    readme.write_text(readme.read_text().replace("fourth line", "fourth line (later)"))
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "git"
    shim.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = init ] && { echo "fatal: cannot mkdir: Permission denied"'
        " >&2; exit 128; }; done\n"
        f'exec {shutil.which("git")} "$@"\n'
    )
    shim.chmod(0o755)
    before = tree_contents(repo), fingerprint(repo)
    path = f"{shims}{os.pathsep}{os.environ['PATH']}"
    failed = cli("apply", task["id"], cwd=str(repo), env_extra={"PATH": path})
    assert failed.returncode == 2, failed.stderr
    message = one_error(failed)
    assert "git init -q failed: fatal: cannot mkdir" in message, message
    assert "nothing was applied" in message and "git status" in message
    assert failed.stdout == "" and (tree_contents(repo), fingerprint(repo)) == before
