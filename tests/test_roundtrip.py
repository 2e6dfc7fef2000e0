"""The round trip's library (scripts/rebyte/roundtrip.py) over real HTTP: a snapshot handed
to a task, the simulated agent's patch fetched from its workspace and applied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_agent import run_agent
from git_repos import fingerprint, git, standard_repo, tree_contents, write
from rebyte import roundtrip
from rebyte.applying import apply_patch
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
