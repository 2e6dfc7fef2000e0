"""Taking an agent's change back (scripts/rebyte/patches.py): reading patches as git writes
them, refusing unsafe ones, and applying all or nothing to a working tree whose .git
stays untouched, with a three-way merge when the user kept editing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from fake_agent import ADDED_PATH, BINARY_BYTES, BINARY_PATH, run_agent
from git_repos import fingerprint, git, make_repo, standard_repo, tree_contents, write

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from rebyte.applying import PatchConflict, apply_patch  # noqa: E402
from rebyte.localrepo import make_snapshot  # noqa: E402
from rebyte.patches import (  # noqa: E402
    FileChange,
    PatchRefused,
    check_safe,
    parse_patch,
    stat,
)
from rebyte_client import InputError, RebyteError  # noqa: E402

ODD_NAMES = ["with space.txt", "ünïcødé ñ.txt", 'say "hi".txt', "tab\there.txt", "back\\slash.txt"]


def diff_of(repo: Path, *args: str) -> bytes:
    git(repo, "add", "-A")
    return git(repo, "diff", "--cached", "--binary", "-M", *args)


# --------------------------------------------------------------------------- reading


def test_quoted_and_odd_names_read_as_git_wrote_them(tmp_path):
    repo = make_repo(tmp_path / "r", {name: "one\n" for name in ODD_NAMES})
    write(repo, {name: "one\ntwo\n" for name in ODD_NAMES})
    changes = parse_patch(diff_of(repo))
    assert sorted(c.path for c in changes) == sorted(ODD_NAMES)
    assert all(c.status == "modified" and c.added_lines == 1 for c in changes)


def test_every_kind_of_change(tmp_path):
    repo = make_repo(
        tmp_path / "r",
        {
            "keep.txt": "a\nb\nc\nd\ne\nf\n",
            "gone.txt": "bye\n",
            "run.sh": "echo\n",
            "b.bin": b"\0" * 9,
        },
    )
    write(repo, {"keep.txt": "a\nb\nc\nd\ne\nF\n", "new dir/empty": "", "b.bin": b"\0\1" * 9})
    os.rename(repo / "gone.txt", repo / "moved.txt")
    os.chmod(repo / "run.sh", 0o755)
    (repo / "keep.txt").rename(repo / "kept.txt")
    changes = {c.path: c for c in parse_patch(diff_of(repo))}
    assert changes["kept.txt"].status == "renamed" and changes["kept.txt"].old_path == "keep.txt"
    assert (changes["kept.txt"].added_lines, changes["kept.txt"].deleted_lines) == (1, 1)
    assert changes["moved.txt"].status == "renamed" and changes["moved.txt"].old_path == "gone.txt"
    assert changes["new dir/empty"] == FileChange(None, "new dir/empty", "added", new_mode="100644")
    assert (changes["run.sh"].old_mode, changes["run.sh"].new_mode) == ("100644", "100755")
    assert changes["b.bin"].binary and changes["b.bin"].status == "modified"


def test_deleted_copied_and_plain_binary(tmp_path):
    repo = make_repo(tmp_path / "r", {"a.txt": "x\n" * 20, "b.bin": b"\0\1\2"})
    (repo / "b.bin").unlink()
    write(repo, {"copy.txt": "x\n" * 20})
    git(repo, "add", "-A")
    data = git(repo, "diff", "--cached", "-C", "--find-copies-harder")  # no --binary
    changes = {c.path: c for c in parse_patch(data)}
    assert changes["copy.txt"].status == "copied" and changes["copy.txt"].old_path == "a.txt"
    gone = changes["b.bin"]
    assert (gone.status, gone.new_path, gone.binary, gone.old_mode) == (
        "deleted",
        None,
        True,
        "100644",
    )


def test_stat_counts_lines_that_look_like_headers(tmp_path):
    repo = make_repo(tmp_path / "r", {"sig.txt": "-- signature\n++ plus\nkeep\n"})
    write(repo, {"sig.txt": "keep\n+++ new\n", "img.bin": BINARY_BYTES})
    summary = stat(diff_of(repo))
    rows = {c.path: (c.added_lines, c.deleted_lines, c.binary) for c in summary.files}
    assert rows == {"sig.txt": (1, 2, False), "img.bin": (0, 0, True)}
    assert (summary.insertions, summary.deletions) == (1, 2)
    assert summary.summary() == "2 files changed, 1 insertion(+), 2 deletions(-)"


def test_a_malformed_patch_is_refused(tmp_path):
    truncated = b"diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\nzzz\n"
    with pytest.raises(PatchRefused, match="shorter than its @@ header"):
        parse_patch(truncated)
    repo = standard_repo(tmp_path / "r")
    with pytest.raises(PatchRefused, match="not a git patch"):
        apply_patch(repo, b"hello, here is no patch\n")
    assert apply_patch(repo, b"").status == "empty"


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "C:/Windows/x",
        "../outside",
        "a/../../outside",
        ".git/hooks/post-checkout",
        ".GIT/config",
        "sub/.Git/hooks/x",
        ".git./config",
        ".git::$INDEX_ALLOCATION/config",
        "git~1/config",
        ".g\u200cit/config",
        "a\\..\\outside",
        "a//b",
        "./a",
        "",
    ],
)
def test_unsafe_names_are_refused(tmp_path, path):
    with pytest.raises(PatchRefused) as refused:
        check_safe(tmp_path, [FileChange(None, path, "added", new_mode="100644")])
    assert refused.value.paths == [path]


def test_paths_through_symlinks_or_into_nested_repos_are_refused(tmp_path):
    repo = standard_repo(tmp_path / "r")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, repo / "link")
    (repo / "vendor" / "inner" / ".git").mkdir(parents=True)
    for path, why in [("link/x.txt", "symlink link"), ("vendor/inner/x", "nested repository")]:
        with pytest.raises(PatchRefused, match=why):
            check_safe(repo, [FileChange(path, path, "modified")])
    check_safe(
        repo,
        [FileChange("src/app.py", "src/app.py", "modified"), FileChange(None, "new/x", "added")],
    )


def test_symlinks_and_gitlinks_are_refused(tmp_path):
    with pytest.raises(PatchRefused, match="makes a symlink"):
        check_safe(tmp_path, [FileChange(None, "l", "added", new_mode="120000")])
    with pytest.raises(PatchRefused, match="gitlink"):
        check_safe(
            tmp_path, [FileChange("m", "m", "modified", old_mode="160000", new_mode="160000")]
        )
    check_safe(tmp_path, [FileChange("old-link", None, "deleted", old_mode="120000")])


# --------------------------------------------------------------------------- applying


@pytest.fixture
def snapshot_and_agent(tmp_path):
    """(user repo, snapshot, agent(prompt) -> patch)."""
    repo = standard_repo(tmp_path / "user")
    write(repo, {"src/app.py": "def main():\n    return 'uncommitted'\n", "untracked.txt": "u\n"})
    snap = make_snapshot(repo, tmp_path)

    def agent(prompt: str) -> bytes:
        return run_agent(snap.bundle_path, prompt, work_dir=tmp_path / "agent")

    return repo, snap, agent


def test_round_trip_reproduces_the_agents_change(tmp_path, snapshot_and_agent):
    repo, _snap, agent = snapshot_and_agent
    patch = agent("[edit][add][binary][delete][rename]")
    git_before = fingerprint(repo)[0]
    result = apply_patch(repo, patch)
    assert (result.status, result.three_way, result.changed) == ("applied", False, True)
    assert tree_contents(repo) == tree_contents(tmp_path / "agent" / "repo")
    assert (repo / BINARY_PATH).read_bytes() == BINARY_BYTES
    assert fingerprint(repo)[0] == git_before  # index, refs, objects: all as they were
    assert {c.path for c in result.changes} >= {ADDED_PATH, BINARY_PATH, "README.md"}
    again = apply_patch(repo, patch)
    assert (again.status, again.changed) == ("already-applied", False)


def test_dry_run_changes_nothing(tmp_path, snapshot_and_agent):
    repo, _snap, agent = snapshot_and_agent
    patch = agent("[edit][add][delete]")
    before, files = fingerprint(repo), tree_contents(repo)
    result = apply_patch(repo, patch, dry_run=True)
    assert (result.status, result.changed) == ("would-apply", False)
    assert fingerprint(repo) == before and tree_contents(repo) == files


def test_a_later_local_edit_nearby_merges_three_way(tmp_path, snapshot_and_agent):
    repo, _snap, agent = snapshot_and_agent
    patch = agent("[edit]")  # appends after "line six"; the hunk's context starts at line four
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("line four", "line FOUR (local)"))
    git_before = fingerprint(repo)[0]
    assert apply_patch(repo, patch, dry_run=True).three_way
    result = apply_patch(repo, patch)
    assert (result.status, result.three_way) == ("applied", True)
    text = readme.read_text()
    assert "line FOUR (local)" in text and text.endswith("Edited by the fake agent.\n")
    assert fingerprint(repo)[0] == git_before


def test_a_base_that_was_never_committed_comes_from_the_bundle(tmp_path):
    repo = standard_repo(tmp_path / "user")
    lines = [f"line {n}\n" for n in range(1, 9)]
    write(repo, {"notes.txt": "".join(lines)})  # never committed: its blob is only in the bundle
    snap = make_snapshot(repo, tmp_path)
    clone = tmp_path / "agent"
    git(tmp_path, "clone", "-q", str(snap.bundle_path), str(clone))
    write(clone, {"notes.txt": "".join(["line 1 (agent)\n"] + lines[1:])})
    patch = git(clone, "diff", "--binary", snap.sha)
    write(repo, {"notes.txt": "".join(lines[:2] + ["line 3 (local)\n"] + lines[3:])})
    with pytest.raises(PatchConflict, match="give the bundle") as no_base:
        apply_patch(repo, patch)
    assert no_base.value.files == ["notes.txt"] and not no_base.value.merged
    result = apply_patch(repo, patch, snapshot_bundle=snap.bundle_path)
    assert (result.status, result.three_way) == ("applied", True)
    merged = (repo / "notes.txt").read_text()
    assert merged == "".join(["line 1 (agent)\n", lines[1], "line 3 (local)\n"] + lines[3:])


def test_a_conflict_names_the_file_and_changes_nothing(tmp_path, snapshot_and_agent):
    repo, _snap, agent = snapshot_and_agent
    patch = agent("[conflict][add]")  # rewrites README.md's first line
    write(
        repo, {"README.md": "# Local title\n" + (repo / "README.md").read_text().split("\n", 1)[1]}
    )
    before, files = fingerprint(repo), tree_contents(repo)
    for dry_run in (True, False):
        with pytest.raises(PatchConflict) as conflict:
            apply_patch(repo, patch, dry_run=dry_run)
        assert conflict.value.files == ["README.md"] and conflict.value.merged
        assert "README.md" in str(conflict.value) and isinstance(conflict.value, RebyteError)
    assert fingerprint(repo) == before and tree_contents(repo) == files


def test_a_new_file_that_exists_locally_is_named(tmp_path, snapshot_and_agent):
    repo, _snap, agent = snapshot_and_agent
    patch = agent("[add]")
    write(repo, {ADDED_PATH: "mine\n"})
    with pytest.raises(PatchConflict) as conflict:
        apply_patch(repo, patch)
    assert ADDED_PATH in conflict.value.files
    assert (repo / ADDED_PATH).read_text() == "mine\n"


@pytest.mark.parametrize("prompt", ["[hostile]", "[edit][hostile]", "[symlink]"])
def test_hostile_patches_are_refused_and_change_nothing(tmp_path, snapshot_and_agent, prompt):
    repo, _snap, agent = snapshot_and_agent
    patch = agent(prompt)
    before, files = fingerprint(repo), tree_contents(repo)
    with pytest.raises(PatchRefused) as refused:
        apply_patch(repo, patch)
    assert isinstance(refused.value, InputError)
    if "hostile" in prompt:
        assert set(refused.value.paths) == {".git/hooks/post-checkout", "../outside.txt"}
    assert fingerprint(repo) == before and tree_contents(repo) == files
    assert not (tmp_path / "outside.txt").exists()


def test_a_section_only_git_sees_is_refused(tmp_path, snapshot_and_agent):
    repo, _snap, agent = snapshot_and_agent
    sneaky = (
        agent("[edit]") + b"--- a/src/app.py\n+++ b/src/app.py\n@@ -1 +1 @@\n-def main():\n+x\n"
    )
    assert len(parse_patch(sneaky)) == 1
    before = tree_contents(repo)
    with pytest.raises(PatchRefused, match="differently|cannot read"):
        apply_patch(repo, sneaky)
    assert tree_contents(repo) == before
