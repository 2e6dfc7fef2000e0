"""The round trip's library (scripts/rebyte/roundtrip.py) over real HTTP: a snapshot handed
to a task, the simulated agent's patch fetched from its workspace and applied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_agent import ADDED_PATH, ADDED_TEXT, EDIT_LINE, run_agent
from git_repos import fingerprint, git, standard_repo, tree_contents, write
from rebyte import roundtrip
from rebyte.applying import PatchConflict, apply_patch
from rebyte.localrepo import PATCH_NAME, make_snapshot


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(prompt_duration=0.1)


def test_a_snapshot_is_uploaded_once_and_named_in_the_prompt(server, client_for, tmp_path):
    repo = standard_repo(tmp_path / "repo")
    write(repo, {"src/app.py": "def main():\n    return 42\n"})  # uncommitted
    snapshot = make_snapshot(repo, tmp_path)
    sent = []
    handoff = roundtrip.hand_off(client_for(server), snapshot, progress=lambda a, b: sent.append(a))
    assert handoff.file["filename"].endswith(".bundle")
    info = server.file_info(handoff.file["id"])
    assert info["size"] == snapshot.bundle_size and sent[-1] == snapshot.bundle_size
    for asked in ("Add tests", "Write the docs"):  # one upload, a prompt for each task
        prompt = handoff.prompt_for(asked)
        assert prompt.startswith(asked + "\n")
        assert f"/code/{handoff.file['filename']}" in prompt
        assert snapshot.sha in prompt and PATCH_NAME in prompt
    assert len(server.requests("POST", "/v1/files")) == 1
    assert handoff.record_fields()["snapshot"] == snapshot.sha
    [put] = server.requests("PUT", None, listener="upload")
    assert put["headers"].get("Content-Type") == roundtrip.BUNDLE_CONTENT_TYPE


def test_the_patch_comes_back_and_applies(server, client_for, tmp_path):
    repo = standard_repo(tmp_path / "repo")
    write(repo, {"notes.txt": "local, never committed\n"})
    snapshot = make_snapshot(repo, tmp_path)
    client = client_for(server)
    handoff = roundtrip.hand_off(client, snapshot)
    task = client.tasks.create(handoff.prompt_for("[add] [edit]"), files=[handoff.file])
    patch = run_agent(snapshot.bundle_path, "[add] [edit]", work_dir=tmp_path / "agent")
    server.add_artifact(task["workspaceId"], PATCH_NAME, data=patch)
    fetched = roundtrip.fetch_patch(client, task["workspaceId"])
    assert fetched.data == patch and PATCH_NAME in fetched.artifacts
    result = apply_patch(repo, fetched.data, snapshot_bundle=snapshot.bundle_path)
    assert result.status == "applied"
    clone = tmp_path / "agent" / "repo"
    assert tree_contents(repo) == tree_contents(clone)


def test_a_task_that_left_no_patch_lists_what_it_left(server, client_for, tmp_path):
    client = client_for(server)
    task = client.tasks.create("Write the report [duration=0]")
    client.tasks.wait(task["id"], timeout=10, poll_interval=0.05)
    fetched = roundtrip.fetch_patch(client, task["workspaceId"])
    assert fetched.data is None and fetched.artifacts == ["output-1.bin", "report-1.md"]


def test_a_patch_over_the_limit_is_not_read(server, client_for, monkeypatch):
    monkeypatch.setattr(roundtrip, "MAX_PATCH_BYTES", 10)
    server.add_artifact("ws-big", PATCH_NAME, data=b"x" * 11)
    with pytest.raises(roundtrip.PatchTooLarge):
        roundtrip.fetch_patch(client_for(server), "ws-big")


def test_a_follow_up_keeps_the_clone_and_the_whole_change():
    text = roundtrip.follow_up_prompt("Now the docs", "abc123")
    assert text.startswith("Now the docs\n") and "/code/repo" in text
    assert "abc123" in text and f"/code/{PATCH_NAME}" in text


def test_old_bundles_are_pruned(tmp_path):
    for n in range(7):
        bundle = tmp_path / f"s{n}.bundle"
        bundle.write_bytes(b"b")
        os.utime(bundle, (1000 + n, 1000 + n))
    (tmp_path / "other.txt").write_text("kept")
    roundtrip.prune_bundles(str(tmp_path), keep=5)
    left = sorted(p.name for p in Path(tmp_path).iterdir())
    assert left == ["other.txt", "s2.bundle", "s3.bundle", "s4.bundle", "s5.bundle", "s6.bundle"]


def test_the_bundle_folder_is_private(local_record_in_tmp):
    folder = roundtrip.bundle_folder()
    assert folder.startswith(str(local_record_in_tmp))
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"


def test_the_users_repository_is_untouched_by_the_hand_off(server, client_for, tmp_path):
    repo = standard_repo(tmp_path / "repo")
    write(repo, {"src/app.py": "changed\n", "new.txt": "untracked\n"})
    git(repo, "add", "src/app.py")
    before = fingerprint(repo)
    roundtrip.hand_off(client_for(server), make_snapshot(repo, tmp_path))
    assert fingerprint(repo) == before


def follow_up_patches(repo: Path, tmp_path: Path, first: str, second: str):
    """The snapshot, the first patch, and the whole change after a follow-up in the same
    clone (as a real agent leaves it)."""
    snapshot = make_snapshot(repo, tmp_path)
    agent = tmp_path / "agent"
    return (
        snapshot,
        run_agent(snapshot.bundle_path, first, work_dir=agent),
        run_agent(snapshot.bundle_path, second, work_dir=agent),
    )


def test_after_a_follow_up_only_what_is_new_is_applied(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    snapshot, first, whole = follow_up_patches(repo, tmp_path, "[edit]", "[edit] [add]")
    bundle = snapshot.bundle_path
    assert apply_patch(repo, first, snapshot_bundle=bundle).status == "applied"
    write(repo, {"src/app.py": "edited here meanwhile\n"})
    readme = (repo / "README.md").read_bytes()
    with pytest.raises(PatchConflict):  # the whole change, merged with its own first part
        apply_patch(repo, whole, snapshot_bundle=bundle, dry_run=True)
    earlier = (first, snapshot.sha)

    done = apply_patch(repo, whole, snapshot_bundle=bundle, earlier=earlier)

    assert done.status == "applied" and done.since_earlier and not done.three_way
    assert (repo / "README.md").read_bytes() == readme + EDIT_LINE.encode()
    assert (repo / ADDED_PATH).read_text() == ADDED_TEXT
    assert (repo / "src/app.py").read_text() == "edited here meanwhile\n"
    assert sorted(c.path for c in done.changes) == sorted(["README.md", ADDED_PATH])
    again = apply_patch(repo, whole, snapshot_bundle=bundle, earlier=earlier)
    assert again.status == "already-applied"


def test_an_earlier_apply_undone_by_the_user_takes_the_whole_change(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    snapshot, first, whole = follow_up_patches(repo, tmp_path, "[edit]", "[edit]")
    apply_patch(repo, first, snapshot_bundle=snapshot.bundle_path)
    git(repo, "checkout", "--", "README.md")
    done = apply_patch(
        repo, whole, snapshot_bundle=snapshot.bundle_path, earlier=(first, snapshot.sha)
    )
    assert done.status == "applied" and not done.since_earlier
    assert (repo / "README.md").read_bytes().endswith(EDIT_LINE.encode() * 2)


def test_a_local_edit_where_the_follow_up_writes_is_merged_or_refused_whole(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    snapshot, first, whole = follow_up_patches(repo, tmp_path, "[edit]", "[conflict]")
    apply_patch(repo, first, snapshot_bundle=snapshot.bundle_path)
    readme = (repo / "README.md").read_text().splitlines(keepends=True)
    write(repo, {"README.md": "".join(["My own first line\n"] + readme[1:])})
    before = tree_contents(repo)
    with pytest.raises(PatchConflict) as conflict:
        apply_patch(
            repo, whole, snapshot_bundle=snapshot.bundle_path, earlier=(first, snapshot.sha)
        )
    assert conflict.value.files == ["README.md"] and tree_contents(repo) == before


def test_applied_patches_are_kept_private_and_few(local_record_in_tmp, monkeypatch):
    monkeypatch.setattr(roundtrip, "KEPT_APPLIED", 3)
    assert roundtrip.applied_before("task-0", "abc") is None  # nothing kept yet
    for n in range(5):
        written = Path(roundtrip._applied_path(f"task-{n}"))
        roundtrip.keep_applied(f"task-{n}", f"patch {n}\n".encode())
        os.utime(written, (1000 + n, 1000 + n))  # one second apart, the newest last
    folder = local_record_in_tmp / "applied"
    roundtrip.keep_applied("task-4", b"patch 4\n")  # pruning runs again, on those times
    kept = sorted(p.read_text() for p in folder.iterdir())
    assert kept == ["patch 2\n", "patch 3\n", "patch 4\n"]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.iterdir())
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert roundtrip.applied_before("task-4", "abc") == (b"patch 4\n", "abc")
    assert roundtrip.applied_before("task-4", None) is None
    monkeypatch.setattr(roundtrip, "MAX_PATCH_BYTES", 3)
    assert roundtrip.applied_before("task-4", "abc") is None


def test_a_kept_patch_that_no_longer_replays_falls_back_to_the_whole_change(tmp_path):
    repo = standard_repo(tmp_path / "repo")
    snapshot, _, whole = follow_up_patches(repo, tmp_path, "[edit]", "[edit]")
    local = (repo / "README.md").read_text().replace("line four", "line 4, edited here")
    write(repo, {"README.md": local})  # in the patch's context: it no longer fits as it is
    stale = b"diff --git a/nowhere b/nowhere\n--- a/nowhere\n+++ b/nowhere\n@@ -1 +1 @@\n-x\n+y\n"
    broken = (stale, snapshot.sha)  # a kept patch that does not apply to the snapshot
    done = apply_patch(repo, whole, snapshot_bundle=snapshot.bundle_path, earlier=broken)
    assert done.status == "applied" and done.three_way and not done.since_earlier
    assert (repo / "README.md").read_text() == local + EDIT_LINE * 2
