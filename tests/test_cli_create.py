"""The CLI's create, get and list, as a subprocess against the local server over real HTTP."""

from __future__ import annotations

import pytest
from cli_checks import api_get, create_task, creates, runner
from fake_rebyte import final_result_for


@pytest.fixture
def cli(fake_rebyte, api_key):
    """cli(*args, ...): the CLI against the local server, held to the output contract."""
    return runner(fake_rebyte, api_key)


def test_create_prints_the_task_and_sends_only_the_prompt(cli, fake_rebyte):
    result = cli("create", "--prompt", "Hello world")
    assert result.returncode == 0, result.stderr
    task = result.json()
    assert task["status"] == "running"
    assert task["url"].endswith(task["id"])
    assert creates(fake_rebyte) == [{"prompt": "Hello world"}]
    assert task["url"] in result.stderr  # the person watching stderr sees where it runs


def test_create_reads_the_prompt_from_a_file(cli, fake_rebyte, tmp_path):
    prompt = "Line one: é ✓\nLine two\n"
    path = tmp_path / "prompt.md"
    path.write_text(prompt, encoding="utf-8")
    result = cli("create", "--prompt-file", str(path))
    assert result.returncode == 0, result.stderr
    assert creates(fake_rebyte) == [{"prompt": prompt}]


def test_create_reads_the_prompt_from_stdin(cli, fake_rebyte):
    prompt = "From a pipe: ünïcode\nsecond line"
    result = cli("create", "--prompt-file", "-", stdin=prompt)
    assert result.returncode == 0, result.stderr
    assert creates(fake_rebyte) == [{"prompt": prompt}]


@pytest.mark.parametrize(
    "given, sent",
    [
        (["--skills", "deep-research", "pdf"], ["deep-research", "pdf"]),
        (["--skills", "deep-research,pdf"], ["deep-research", "pdf"]),
        (["--skills", "a,b", "c", "--skills", "d"], ["a", "b", "c", "d"]),
    ],
)
def test_create_skills_space_and_comma_forms(cli, fake_rebyte, given, sent):
    result = cli("create", "--prompt", "x", *given)
    assert result.returncode == 0, result.stderr
    assert creates(fake_rebyte)[0]["skills"] == sent


@pytest.mark.parametrize(
    "github_url", ["owner/repo", "https://github.com/owner/repo", "https://github.com/owner/repo/"]
)
def test_create_github_url_is_sent_as_owner_repo(cli, fake_rebyte, github_url):
    result = cli("create", "--prompt", "x", "--github-url", github_url, "--branch", "dev")
    assert result.returncode == 0, result.stderr
    body = creates(fake_rebyte)[0]
    assert body["githubUrl"] == "owner/repo"
    assert body["branchName"] == "dev"


def test_create_executor_and_model(cli, fake_rebyte, api_key):
    task = create_task(cli, "x", "--executor", "codex", "--model", "pro")
    assert creates(fake_rebyte)[0] == {"prompt": "x", "executor": "codex", "model": "pro"}
    status, stored = api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")
    assert (stored["executor"], stored["model"]) == ("codex", "pro")


def test_create_reuses_a_workspace(cli, fake_rebyte):
    first = create_task(cli, "first")
    second = create_task(cli, "second", "--workspace", first["workspaceId"])
    assert creates(fake_rebyte)[1]["workspaceId"] == first["workspaceId"]
    assert second["workspaceId"] == first["workspaceId"]
    assert second["id"] != first["id"]


def test_create_file_uploads_it_and_attaches_it(cli, fake_rebyte, api_key, tmp_path):
    data = b"name,value\n" + b"row,1\n" * 5000
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    result = cli("create", "--prompt", "Analyze the CSV", "--file", str(path))
    assert result.returncode == 0, result.stderr

    [slot] = fake_rebyte.requests("POST", "/v1/files")
    assert slot["json"]["filename"] == "data.csv"
    [put] = fake_rebyte.requests("PUT", listener="upload")
    assert put["status"] == 200 and put["body_bytes"] == len(data)
    assert not {"api_key", "api-key", "x-api-key"} & {h.lower() for h in put["headers"]}
    file_id = put["path"].rsplit("/", 1)[1]
    info = fake_rebyte.file_info(file_id)
    assert info["uploaded"] and info["size"] == len(data)
    # the create names the file by the id and the unique name the server gave it
    assert creates(fake_rebyte)[0]["files"] == [{"id": file_id, "filename": info["filename"]}]
    task = result.json()
    assert api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[0] == 200


def test_create_file_ref_attaches_an_earlier_upload(cli, fake_rebyte, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("notes")
    upload = cli("upload", str(path), "-q")
    assert upload.returncode == 0, upload.stderr
    ref = upload.stdout.strip()
    file_id, _, filename = ref.partition(":")
    assert filename.startswith("notes") and filename.endswith(".txt")

    result = cli("create", "--prompt", "Read the notes", "--file-ref", ref)
    assert result.returncode == 0, result.stderr
    assert creates(fake_rebyte)[0]["files"] == [{"id": file_id, "filename": filename}]
    assert len(fake_rebyte.requests("POST", "/v1/files")) == 1  # no second upload


def test_create_public_shares_it(cli, fake_rebyte, api_key):
    result = cli("create", "--prompt", "x", "--public")
    assert result.returncode == 0, result.stderr
    task = result.json()
    assert task["shareUrl"] and task["id"] in task["shareUrl"]
    [patch] = fake_rebyte.requests("PATCH", r"/v1/tasks/[^/]+/visibility")
    assert patch["json"] == {"visibility": "public"}
    fake_rebyte.configure(task_view_extras=True)  # the documented task view does not show it
    assert api_get(fake_rebyte, api_key, f"/tasks/{task['id']}")[1]["visibility"] == "public"


def test_create_public_quiet_prints_the_task_url(cli):
    result = cli("create", "--prompt", "x", "--public", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and "/run/" in result.stdout


def test_create_dry_run_sends_nothing_and_redacts_the_key(cli, fake_rebyte, api_key, tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a")
    result = cli(
        "create",
        "--prompt",
        "x",
        "--skills",
        "pdf",
        "--github-url",
        "https://github.com/o/r",
        "--file",
        str(path),
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    assert fake_rebyte.requests(listener=None) == []
    shown = result.json()
    request = shown["request"]
    assert request["method"] == "POST" and request["url"] == fake_rebyte.base_url + "/tasks"
    assert request["json"]["prompt"] == "x"
    assert request["json"]["skills"] == ["pdf"]
    assert request["json"]["githubUrl"] == "o/r"
    assert "redacted" in request["headers"]["API_KEY"]
    assert api_key not in result.stdout


def test_create_wait_prints_the_final_task_with_its_result(cli):
    prompt = "Summarize the repo"
    result = cli("create", "--prompt", prompt, "--wait", "--interval", "0.2")
    assert result.returncode == 0, result.stderr
    task = result.json()
    assert task["status"] == "completed"
    assert task["result"] == final_result_for(prompt)
    assert "running" in result.stderr  # progress went to stderr, not stdout


def test_create_wait_on_a_failing_task_exits_1(cli):
    result = cli("create", "--prompt", "Break [fail]", "--wait", "--interval", "0.2")
    assert result.returncode == 1, result.stderr
    task = result.json()
    assert task["status"] == "failed"
    assert task["url"] in result.stderr


@pytest.mark.parametrize(
    "prompt, code, status", [("Go", 0, "completed"), ("No [fail]", 1, "failed")]
)
def test_create_watch_shows_events_on_stderr_and_the_result_on_stdout(cli, prompt, code, status):
    result = cli("create", "--prompt", prompt, "--watch")
    assert result.returncode == code, result.stderr
    task = result.json()
    assert task["status"] == status
    assert "agent started" in result.stderr
    assert "→ bash: ls /code" in result.stderr
    if code == 0:
        assert task["result"] == final_result_for(prompt)
        assert f"result: {final_result_for(prompt)}" in result.stderr
    else:
        assert "failed" in result.stderr


def test_get_shows_status_and_prompts(cli):
    task = create_task(cli, "x")
    result = cli("get", task["id"])
    assert result.returncode == 0, result.stderr
    shown = result.json()
    assert shown["id"] == task["id"]
    assert shown["status"] in ("running", "completed")
    assert len(shown["prompts"]) == 1
    quiet = cli("get", task["id"], "-q")
    assert quiet.stdout == task["url"] + "\n"


def test_list_limit_and_offset(make_fake_rebyte, api_key):
    server = make_fake_rebyte(seed_tasks=7)
    run = runner(server, api_key)
    everything = run("list").json()
    assert everything["total"] == 7 and len(everything["data"]) == 7
    page = run("list", "--limit", "2", "--offset", "3")
    assert page.returncode == 0, page.stderr
    shown = page.json()
    assert [t["id"] for t in shown["data"]] == [t["id"] for t in everything["data"][3:5]]
    assert (shown["limit"], shown["offset"]) == (2, 3)
    assert server.requests("GET", "/v1/tasks")[-1]["query"] == {"limit": "2", "offset": "3"}


def test_list_all_reads_every_page(make_fake_rebyte, api_key):
    server = make_fake_rebyte(seed_tasks=230)
    run = runner(server, api_key)
    result = run("list", "--all")
    assert result.returncode == 0, result.stderr
    ids = [task["id"] for task in result.json()["data"]]
    assert len(ids) == len(set(ids)) == 230
    pages = server.requests("GET", "/v1/tasks")
    assert len(pages) == 3  # 100 + 100 + 30, and no request more
    assert [p["query"]["offset"] for p in pages] == ["0", "100", "200"]
    quiet = run("list", "--all", "-q")
    assert len(quiet.stdout.splitlines()) == 230


def test_seed_pages_command_lines_work_unchanged(cli, tmp_path):
    """The command lines of the seed pages, from another working directory."""
    hello = cli("create", "--prompt", "Hello world", cwd=str(tmp_path))
    assert hello.returncode == 0, hello.stderr
    task_id = hello.json()["id"]
    assert cli("get", task_id, cwd=str(tmp_path)).json()["id"] == task_id
    listed = cli("list", cwd=str(tmp_path)).json()
    assert task_id in [task["id"] for task in listed["data"]]
    analyze = cli(
        "create", "--prompt", "Analyze this repo", "--skills", "deep-research", cwd=str(tmp_path)
    )
    assert analyze.returncode == 0 and analyze.json()["url"]
    follow = cli("follow-up", task_id, "--prompt", "Fix the issues", cwd=str(tmp_path))
    assert follow.returncode == 0, follow.stderr
    assert follow.json()["promptId"]
    deleted = cli("delete", task_id, "--yes", cwd=str(tmp_path))
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.json() == {"id": task_id, "deleted": True}
    assert cli("get", task_id, cwd=str(tmp_path)).returncode == 4
