"""The local server plays the agent (issue 20): a task given a git bundle gets a patch.

Over real sockets, with plain git on the test's side: a tiny repository, a bundle made
with `git bundle create`, uploaded through the files API, and the patch the server's
simulated agent (tests/fake_agent.py) leaves as the workspace artifact
rebyte-change.patch, checked with `git apply --check` in a clone of the bundle.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import fake_agent
import pytest
import requests
from git_repos import git, make_repo

KEY = "rbk_test_key"
TIMEOUT = 10
PATCH = "rebyte-change.patch"
FILES = {"README.md": "# Tiny\n\nline two\n", "src/one.txt": "one\n", "src/two.txt": "two\n"}


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(key=KEY, prompt_duration=0.1)


@pytest.fixture
def bundle(tmp_path) -> Path:
    """A bundle of a tiny repository: HEAD and its branch, one head commit."""
    repo = make_repo(tmp_path / "repo", FILES)
    path = tmp_path / "snap.bundle"
    git(repo, "bundle", "create", "-q", str(path), "HEAD", "main")
    return path


def call(server, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.request(method, server.base_url + path, headers={"API_KEY": KEY}, **kwargs)


def upload(server, name: str, data: bytes) -> dict:
    """POST /v1/files, then the PUT of the bytes: the {id, filename} to attach."""
    slot = call(server, "POST", "/files", json={"filename": name}).json()
    put = requests.put(
        slot["uploadUrl"],
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    assert put.status_code == 200, put.text
    return {"id": slot["id"], "filename": slot["filename"]}


def wait_prompt(server, task_id: str, prompt_id: str | None = None) -> dict:
    """The task view once its prompt (the latest, or prompt_id) has ended."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        task = call(server, "GET", f"/tasks/{task_id}").json()
        prompt = next((p for p in task["prompts"] if p["id"] == prompt_id), task["prompts"][-1])
        if prompt["status"] in ("succeeded", "failed", "canceled"):
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


def start_task(server, prompt: str, files: list) -> dict:
    created = call(server, "POST", "/tasks", json={"prompt": prompt, "files": files})
    assert created.status_code == 201, created.text
    task = created.json()
    assert wait_prompt(server, task["id"])["status"] == "completed"
    return task


def artifact_names(server, workspace_id: str) -> list:
    listed = call(server, "GET", f"/workspaces/{workspace_id}/artifacts")
    assert listed.status_code == 200, listed.text
    return [entry["filename"] for entry in listed.json()["data"]]


def download_patch(server, workspace_id: str) -> bytes:
    response = call(server, "GET", f"/workspaces/{workspace_id}/artifacts/{PATCH}")
    assert response.status_code == 200, response.text
    return response.content


def applies(bundle: Path, patch: bytes, where: Path) -> Path:
    """A fresh clone of the bundle with the patch checked, then applied."""
    git(bundle.parent, "clone", "-q", str(bundle), str(where))
    (where.parent / f"{where.name}.patch").write_bytes(patch)
    git(where, "apply", "--check", f"../{where.name}.patch")
    git(where, "apply", f"../{where.name}.patch")
    return where


def test_a_bundle_task_leaves_the_whole_change_as_a_patch(server, bundle, tmp_path):
    attached = upload(server, "snap.bundle", bundle.read_bytes())
    task = start_task(server, "Add a file [add]", [attached])
    assert artifact_names(server, task["workspaceId"]) == [
        "output-1.bin",
        PATCH,
        "report-1.md",
    ]
    first = download_patch(server, task["workspaceId"])
    clone = applies(bundle, first, tmp_path / "first")
    assert (clone / fake_agent.ADDED_PATH).read_text() == fake_agent.ADDED_TEXT
    assert (clone / "README.md").read_text() == FILES["README.md"]

    # A follow-up works in the same clone: its patch is the task's whole change.
    sent = call(server, "POST", f"/tasks/{task['id']}/prompts", json={"prompt": "Now [edit]"})
    assert sent.status_code == 201, sent.text
    wait_prompt(server, task["id"], sent.json()["promptId"])
    assert PATCH in artifact_names(server, task["workspaceId"])
    both = download_patch(server, task["workspaceId"])
    assert both != first
    clone = applies(bundle, both, tmp_path / "both")
    assert (clone / fake_agent.ADDED_PATH).read_text() == fake_agent.ADDED_TEXT
    assert (clone / "README.md").read_text() == FILES["README.md"] + fake_agent.EDIT_LINE
    assert [(e["prompt"], e["error"]) for e in server.agent_log] == [(1, None), (2, None)]


def test_a_bundle_given_in_a_follow_up_counts_too(server, bundle, tmp_path):
    task = start_task(server, "Look around first", [])
    assert PATCH not in artifact_names(server, task["workspaceId"])
    attached = upload(server, "snap.bundle", bundle.read_bytes())
    sent = call(
        server,
        "POST",
        f"/tasks/{task['id']}/prompts",
        json={"prompt": "Add [add]", "files": [attached]},
    )
    wait_prompt(server, task["id"], sent.json()["promptId"])
    applies(bundle, download_patch(server, task["workspaceId"]), tmp_path / "clone")


def test_no_patch_leaves_none(server, bundle):
    attached = upload(server, "snap.bundle", bundle.read_bytes())
    task = start_task(server, "Only look [no-patch]", [attached])
    assert artifact_names(server, task["workspaceId"]) == ["output-1.bin", "report-1.md"]
    missing = call(server, "GET", f"/workspaces/{task['workspaceId']}/artifacts/{PATCH}")
    assert missing.status_code == 404
    assert [(e["patchBytes"], e["error"]) for e in server.agent_log] == [(None, None)]


def test_a_task_without_a_bundle_gets_no_patch(server):
    attached = upload(server, "data.csv", b"a,b\n1,2\n")
    task = start_task(server, "Add a file [add]", [attached])
    assert artifact_names(server, task["workspaceId"]) == ["output-1.bin", "report-1.md"]
    assert server.agent_log == []
    assert server._agent_dir is None  # nothing was kept


def test_an_agent_failure_leaves_no_patch_and_says_why(server, capfd):
    attached = upload(server, "broken.bundle", b"this is not a git bundle\n")
    task = start_task(server, "Add a file [add]", [attached])
    assert artifact_names(server, task["workspaceId"]) == ["output-1.bin", "report-1.md"]
    [entry] = server.agent_log
    assert entry["patchBytes"] is None and entry["error"]
    assert f"task {task['id']} prompt 1: no patch" in capfd.readouterr().err
    assert call(server, "GET", f"/tasks/{task['id']}").json()["status"] == "completed"


def test_a_run_past_the_timeout_is_abandoned(make_fake_rebyte, bundle):
    server = make_fake_rebyte(key=KEY, prompt_duration=0.1, agent_timeout=0)
    attached = upload(server, "snap.bundle", bundle.read_bytes())
    task = start_task(server, "Add a file [add]", [attached])
    assert PATCH not in artifact_names(server, task["workspaceId"])
    [entry] = server.agent_log
    assert entry["error"].startswith("timed out")


def test_bundles_are_kept_on_disk_until_stop(make_fake_rebyte, bundle, tmp_path):
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    server = make_fake_rebyte(key=KEY, prompt_duration=0.1, upload_dir=str(upload_dir))
    attached = upload(server, "snap.bundle", bundle.read_bytes())
    upload(server, "notes.txt", b"not kept")
    assert (upload_dir / attached["filename"]).read_bytes() == bundle.read_bytes()
    folder = server._agent_dir
    [kept] = os.listdir(folder)
    assert (Path(folder) / kept).read_bytes() == bundle.read_bytes()
    server.stop()
    assert not os.path.exists(folder)
    assert (upload_dir / attached["filename"]).is_file()  # upload_dir is the caller's
