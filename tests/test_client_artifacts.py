"""Workspace artifacts through the client, over real sockets against the local server.

List (every wrapper and name field), download (direct and by redirect to the storage
host, which must see no key), upload (multipart and signed URL), delete; downloads
interrupted half-way, hostile names, existing files, and a large download in
constant memory.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from rebyte_client import (  # noqa: E402
    APIConnectionError,
    APIError,
    ArtifactsRefusedError,
    InputError,
    NotFoundError,
    OutcomeUnknownError,
    RebyteClient,
    WorkspaceUnknownError,
    safe_artifact_path,
)

ARTIFACT_ROUTE = r"/v1/workspaces/[^/]+/artifacts/[^/]+"


@pytest.fixture
def server(make_fake_rebyte):
    return make_fake_rebyte(prompt_duration=0.1)


@pytest.fixture
def client(server, api_key):
    with RebyteClient(api_key, base_url=server.base_url, max_retries=0) as made:
        made._sleep = lambda seconds: None
        yield made


def finished_task(client) -> dict:
    task = client.tasks.create("Write the report [duration=0]")
    client.tasks.wait(task["id"], timeout=10, poll_interval=0.05)
    return task


def files_under(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------ listing


@pytest.mark.parametrize("wrapper", ["data", "artifacts", "bare"])
@pytest.mark.parametrize("field", ["filename", "name"])
def test_list_takes_every_wrapper_and_name_field(server, client, wrapper, field):
    task = finished_task(client)
    server.configure(artifacts_wrapper=wrapper, artifact_name_field=field)
    entries = client.artifacts.list(task["workspaceId"])
    assert [e["name"] for e in entries] == ["output-1.bin", "report-1.md"]
    assert entries[0]["size"] == 65536 and entries[0][field] == "output-1.bin"


def test_a_task_id_resolves_to_its_workspace_and_other_ids_stand_for_themselves(server, client):
    task = finished_task(client)
    with pytest.raises(WorkspaceUnknownError):  # the documented task view does not say it
        client.tasks.workspace_of(task["id"])
    assert client.tasks.workspace_of(task["id"], known="w-kept") == "w-kept"
    server.configure(task_view_extras=True)  # a server that happens to say it is believed
    assert client.tasks.workspace_of(task["id"]) == task["workspaceId"]
    server.configure(task_view_extras=False)
    assert client.tasks.workspace_of(task["workspaceId"]) == task["workspaceId"]
    by_workspace = client.artifacts.list(task["workspaceId"])
    assert [e["name"] for e in by_workspace] == ["output-1.bin", "report-1.md"]
    with pytest.raises(NotFoundError) as caught:
        client.artifacts.list("no-such-workspace")
    assert caught.value.resource == "workspace"


def test_list_tolerates_sizes_of_the_wrong_type_and_nameless_entries(requests_mock, api_key):
    base = "https://api.example.test/v1"
    requests_mock.get(f"{base}/tasks/ws1", status_code=404, json={"error": {"code": "x"}})
    requests_mock.get(
        f"{base}/workspaces/ws1/artifacts",
        json={
            "artifacts": [
                {"name": "a.txt", "size": "12"},
                {"filename": "b.txt", "size": True},
                {"filename": "c.txt"},
                {"filename": "d.txt", "size": -4},
                {"size": 3},
                "not an object",
            ]
        },
    )
    with RebyteClient(api_key, base_url=base) as made:
        entries = made.artifacts.list("ws1")
    assert [(e["name"], e["size"]) for e in entries] == [
        ("a.txt", 12),
        ("b.txt", None),
        ("c.txt", None),
        ("d.txt", None),
    ]


# ---------------------------------------------------------------------------- download


@pytest.mark.parametrize("mode", ["direct", "redirect"])
def test_download_all_direct_or_by_redirect(server, client, tmp_path, mode, api_key):
    task = finished_task(client)
    server.configure(artifact_download=mode)
    server.clear_log()
    files = client.artifacts.download_all(task["workspaceId"], dest_dir=tmp_path / "out")
    assert [(f["name"], f["bytes"]) for f in files] == [
        ("output-1.bin", 65536),
        ("report-1.md", len(server.artifact_bytes(task["workspaceId"], "report-1.md"))),
    ]
    for file in files:
        assert Path(file["path"]).read_bytes() == server.artifact_bytes(
            task["workspaceId"], file["name"]
        )
    assert files_under(tmp_path / "out") == ["output-1.bin", "report-1.md"]
    storage = server.requests("GET", None, listener="upload")
    assert len(storage) == (2 if mode == "redirect" else 0)
    for entry in storage:  # the storage host is not Rebyte: no key, no credentials
        names = {name.lower() for name in entry["headers"]}
        assert not names & {"api_key", "api-key", "x-api-key", "authorization", "cookie"}
        assert api_key not in repr(entry["headers"])


def test_a_nested_name_keeps_its_folders_inside_the_destination(server, client, tmp_path):
    server.add_artifact("ws-nested", "reports/2026/q1.pdf", data=b"%PDF-1.7 q1")
    [file] = client.artifacts.download_all("ws-nested", dest_dir=tmp_path)
    assert Path(file["path"]) == tmp_path / "reports" / "2026" / "q1.pdf"
    assert (tmp_path / "reports" / "2026" / "q1.pdf").read_bytes() == b"%PDF-1.7 q1"
    assert server.requests("GET", r"/v1/workspaces/ws-nested/artifacts/reports%2F2026%2Fq1\.pdf")


def test_an_existing_file_is_refused_before_anything_is_sent(server, client, tmp_path):
    task = finished_task(client)
    (tmp_path / "report-1.md").write_text("mine")
    server.clear_log()
    with pytest.raises(InputError, match="exists"):
        client.artifacts.download(task["workspaceId"], "report-1.md", tmp_path)
    with pytest.raises(ArtifactsRefusedError) as caught:
        client.artifacts.download_all(task["workspaceId"], dest_dir=tmp_path)
    assert caught.value.existing == ["report-1.md"]
    assert (tmp_path / "report-1.md").read_text() == "mine"
    assert not server.requests("GET", ARTIFACT_ROUTE)
    assert files_under(tmp_path) == ["report-1.md"]
    file = client.artifacts.download(task["workspaceId"], "report-1.md", tmp_path, overwrite=True)
    assert Path(file["path"]).read_bytes() == server.artifact_bytes(
        task["workspaceId"], "report-1.md"
    )


@pytest.mark.parametrize("route", [ARTIFACT_ROUTE, r"/artifacts/.*"])
def test_a_download_cut_half_way_leaves_nothing_and_a_second_run_succeeds(
    server, client, tmp_path, route
):
    server.add_artifact("ws-cut", "big.bin", size=3 * 1024 * 1024)
    if route != ARTIFACT_ROUTE:  # cut on the storage host, after the redirect
        server.configure(artifact_download="redirect")
    server.inject("GET", route, "short-body")
    with pytest.raises(APIConnectionError):
        client.artifacts.download("ws-cut", "big.bin", tmp_path)
    assert files_under(tmp_path) == [], "no partial file, under its name or a temporary one"
    file = client.artifacts.download("ws-cut", "big.bin", tmp_path)
    assert file["bytes"] == 3 * 1024 * 1024
    assert sha256(tmp_path / "big.bin") == server.artifact_sha256("ws-cut", "big.bin")
    assert files_under(tmp_path) == ["big.bin"]


def test_a_retry_starts_the_download_again_from_a_truncated_file(server, api_key, tmp_path):
    server.add_artifact("ws-retry", "big.bin", size=2 * 1024 * 1024 + 7)
    server.inject("GET", ARTIFACT_ROUTE, "short-body")
    with RebyteClient(api_key, base_url=server.base_url, max_retries=1) as made:
        made._sleep = lambda seconds: None
        file = made.artifacts.download("ws-retry", "big.bin", tmp_path)
    assert file["bytes"] == 2 * 1024 * 1024 + 7
    assert sha256(tmp_path / "big.bin") == server.artifact_sha256("ws-retry", "big.bin")
    assert len(server.requests("GET", ARTIFACT_ROUTE)) == 2
    assert files_under(tmp_path) == ["big.bin"]


def test_ctrl_c_during_a_download_leaves_nothing(server, client, tmp_path):
    server.add_artifact("ws-int", "big.bin", size=4 * 1024 * 1024)

    def interrupt(name, done, total):
        if done >= 1024 * 1024:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.artifacts.download("ws-int", "big.bin", tmp_path, progress=interrupt)
    assert files_under(tmp_path) == []


HOSTILE = [
    "../x",
    "/etc/x",
    "a/../../x",
    "nul\x00name",
    "esc\x1b[2Jname",
    "back\\slash",
    "a//b",
    "trailing/",
    "n" * 300,
    "link/escaped.txt",
    "Same.txt",
    "same.txt",
    "clash",
    "clash/inner.txt",
]


def test_a_hostile_list_writes_nothing_outside_the_destination(server, client, tmp_path):
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "link").symlink_to(outside, target_is_directory=True)
    for name in HOSTILE:
        server.add_artifact("ws-evil", name, data=b"evil")
    server.add_artifact("ws-evil", "safe.txt", data=b"safe")
    server.add_artifact("ws-evil", "reports/q1.pdf", data=b"pdf")
    with pytest.raises(ArtifactsRefusedError) as caught:
        client.artifacts.download_all("ws-evil", dest_dir=dest)
    refused = dict(caught.value.refused)
    assert set(refused) == set(HOSTILE), set(HOSTILE) ^ set(refused)
    assert "same local path" in refused["Same.txt"] and "same local path" in refused["clash"]
    assert not server.requests("GET", ARTIFACT_ROUTE), "nothing is fetched before all are checked"
    safe = [name for name in server.artifact_names("ws-evil") if name not in refused]
    files = client.artifacts.download_all("ws-evil", safe, dest_dir=dest)
    assert sorted(f["name"] for f in files) == ["reports/q1.pdf", "safe.txt"]
    assert files_under(outside) == []
    assert files_under(dest) == ["link", "reports", "reports/q1.pdf", "safe.txt"]
    assert files_under(tmp_path.parent / tmp_path.name) == sorted(
        ["dest", "outside"] + [f"dest/{p}" for p in files_under(dest)]
    )
    for name in HOSTILE[:10]:
        with pytest.raises(InputError):
            client.artifacts.download("ws-evil", name, dest)


def test_safe_artifact_path_keeps_names_inside(tmp_path):
    assert safe_artifact_path(tmp_path, "reports/q1.pdf") == os.path.join(
        tmp_path, "reports", "q1.pdf"
    )
    assert safe_artifact_path(tmp_path, "été.txt").endswith("été.txt")
    for name in ["", ".", "..", "a/./b", "C:evil", "x" * 256, "é" * 128, "tab\tname"]:
        with pytest.raises(InputError):
            safe_artifact_path(tmp_path, name)
    assert safe_artifact_path(tmp_path, "x" * 255)


def test_a_redirect_to_plain_http_off_loopback_is_refused(api_key, tmp_path):
    """A fake API answering every artifact download with a redirect to http://example."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            seen.append(self.path)
            if self.path.startswith("/v1/tasks/"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
            else:
                self.send_response(302)
                self.send_header("Location", "http://storage.example.com/artifact?sig=abc")
                self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        with RebyteClient(api_key, base_url=base, max_retries=0) as made:
            with pytest.raises(APIError) as caught:
                made.artifacts.download("ws1", "report.md", tmp_path)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "redirected to http://storage.example.com/artifact" in str(caught.value)
    assert "sig=abc" not in str(caught.value)
    assert seen == ["/v1/workspaces/ws1/artifacts/report.md"]
    assert files_under(tmp_path) == []


def test_a_large_download_runs_in_constant_memory(server, client, tmp_path):
    size = 200 * 1024 * 1024
    server.add_artifact("ws-large", "large.bin", size=size)
    tracemalloc.start()
    try:
        file = client.artifacts.download("ws-large", "large.bin", tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert file["bytes"] == size == (tmp_path / "large.bin").stat().st_size
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 200 MiB download"
    assert sha256(tmp_path / "large.bin") == server.artifact_sha256("ws-large", "large.bin")


# ------------------------------------------------------------------------------ upload


def test_upload_small_files_by_multipart_and_a_large_one_by_signed_url(
    server, client, tmp_path, api_key
):
    task = finished_task(client)
    small = tmp_path / "notes.txt"
    small.write_text("notes\n")
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(9 * 1024 * 1024))
    server.clear_log()
    seen = []
    entries = client.artifacts.upload(
        task["workspaceId"], [small, large, data], progress=lambda *args: seen.append(args)
    )
    assert [(e["name"], e["size"]) for e in entries] == [
        ("large.bin", 9 * 1024 * 1024),
        ("notes.txt", 6),
        ("data.csv", 8),
    ]
    ws = task["workspaceId"]
    assert server.artifact_bytes(ws, "notes.txt") == b"notes\n"
    assert server.artifact_bytes(ws, "data.csv") == b"a,b\n1,2\n"
    assert server.artifact_sha256(ws, "large.bin") == sha256(large)
    posts = server.requests("POST", rf"/v1/workspaces/{ws}/artifacts")
    assert len(posts) == 1, "both small files in one multipart POST"
    assert posts[0]["headers"]["Content-Type"].startswith("multipart/form-data")
    assert len(server.requests("POST", rf"/v1/workspaces/{ws}/artifacts/upload-url")) == 1
    [put] = server.requests("PUT", None, listener="upload")
    assert put["headers"].get("Content-Length") == str(9 * 1024 * 1024)
    assert api_key not in repr(put["headers"])
    assert not {n.lower() for n in put["headers"]} & {"api_key", "authorization", "cookie"}
    assert seen[-1] == ("data.csv", 8, 8)
    assert ("large.bin", 9 * 1024 * 1024, 9 * 1024 * 1024) in seen


def test_upload_is_sent_once_only(server, client, tmp_path):
    task = finished_task(client)
    note = tmp_path / "notes.txt"
    note.write_text("notes\n")
    server.inject("POST", r"/v1/workspaces/[^/]+/artifacts", "500", after=True)
    with pytest.raises(OutcomeUnknownError) as caught:
        client.artifacts.upload(task["workspaceId"], [note])
    assert caught.value.operation == "upload_artifacts"
    assert caught.value.resource_id == task["workspaceId"]
    assert "artifacts.list" in caught.value.hint
    assert len(server.requests("POST", r"/v1/workspaces/[^/]+/artifacts")) == 1


def test_upload_checks_every_path_before_sending(server, client, tmp_path):
    task = finished_task(client)
    note = tmp_path / "notes.txt"
    note.write_text("notes\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("again\n")
    server.clear_log()
    with pytest.raises(InputError, match="no such file"):
        client.artifacts.upload(task["workspaceId"], [note, tmp_path / "missing.txt"])
    with pytest.raises(InputError, match="both"):
        client.artifacts.upload(task["workspaceId"], [note, other / "notes.txt"])
    assert not server.requests("POST")


# ------------------------------------------------------------------------------ delete


def test_delete_one_and_delete_all(server, client):
    task = finished_task(client)
    ws = task["workspaceId"]
    server.add_artifact(ws, "reports/q1.pdf", data=b"pdf")
    client.artifacts.delete(ws, "reports/q1.pdf")
    assert server.artifact_names(ws) == ["output-1.bin", "report-1.md"]
    with pytest.raises(NotFoundError) as caught:
        client.artifacts.delete(ws, "reports/q1.pdf")
    assert caught.value.resource == "artifact"
    client.artifacts.delete_all(ws)
    assert server.artifact_names(ws) == []
    assert client.artifacts.list(ws) == []


def test_names_windows_refuses_are_recognised():
    from rebyte.checks import _refused_by_windows

    refused = ["CON", "con.txt", "lpt1", "a.", "b ", "x:y", 'q"', "star*"]
    for name in refused:
        assert _refused_by_windows(name), name
    for name in ["console.txt", "report-1.md", "é.txt", "con-notes"]:
        assert not _refused_by_windows(name), name


def test_a_file_where_a_folder_must_go_is_a_clear_error(server, client, tmp_path):
    server.add_artifact("ws-file", "reports/q1.pdf", data=b"pdf")
    (tmp_path / "reports").write_text("a file, not a folder")
    with pytest.raises(InputError, match="cannot write"):
        client.artifacts.download("ws-file", "reports/q1.pdf", tmp_path)
    assert files_under(tmp_path) == ["reports"]
