"""`create`, `follow-up` and `upload`: a prompt and its files sent, then maybe waited for.

Also what `batch` creates each task with: plan_task checks a task whole before anything
is sent, create_planned uploads its files and creates it with its local record.
"""

from __future__ import annotations

import argparse
import functools
import os

from .errors import EXIT_OK, UsageError
from .options import (
    add_download_option,
    add_prompt_options,
    add_wait_options,
    add_workspace_option,
    command,
    commands,
    one_task_argument,
    options,
)
from .output import RUN, Output, TransferBar, format_size, tab_line
from .roundtrip import (
    add_local_repo_options,
    dry_run_snapshot,
    follow_up_prompt,
    hand_off,
    local_repo_request,
    next_steps,
    plan_with_handoff,
    prompt_to_check,
    remember_handoff,
    take_snapshot,
)
from .session import (
    COMPUTER_WAIT_TIMEOUT,
    Run,
    api_host,
    check_upload_paths,
    create_computer,
    load_client_module,
    make_client,
    read_text,
    send_recorded,
    wait_for_computer,
)
from .waiting import finish_with_wait, wait_and_report, waiting

REPEAT_WARNING_SECONDS = 300.0  # a repeated create within this of an unanswered one is warned of


def _create_arguments(create: argparse.ArgumentParser) -> None:
    add_prompt_options(create)
    create.add_argument("--executor", help="opencode, claude, gemini or codex")
    create.add_argument("--model", help="model tier, e.g. lite")
    create.add_argument("--github-url", metavar="REPO", help="owner/repo or a github.com URL")
    create.add_argument("--branch", metavar="NAME", help="branch of the repo (default main)")
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--workspace",
        "--workspace-id",
        "--computer",
        dest="workspace",
        metavar="ID",
        help="run in this workspace or Agent Computer",
    )
    where.add_argument(
        "--new-computer",
        action="store_true",
        help="run it in a new Agent Computer, once it is ready",
    )
    create.add_argument("--public", action="store_true", help="share it publicly once created")
    create.add_argument("--dry-run", action="store_true", help="print the request; send nothing")
    add_local_repo_options(create)
    add_wait_options(create)
    add_download_option(create)


def _follow_up_arguments(follow: argparse.ArgumentParser) -> None:
    one_task_argument(follow)
    add_prompt_options(follow)
    add_wait_options(follow)
    add_download_option(follow)
    add_workspace_option(follow, "with --download: ")


def _upload_arguments(upload: argparse.ArgumentParser) -> None:
    upload.add_argument("paths", nargs="+", metavar="PATH")


def prompt_bytes_cap() -> int:
    """The most bytes a prompt can take: MAX_PROMPT_CHARS characters of up to 4 bytes."""
    return load_client_module().MAX_PROMPT_CHARS * 4


def read_prompt(opts) -> str:
    """The prompt from --prompt or --prompt-file (- for stdin), as text."""
    if opts.prompt is not None:
        return opts.prompt
    return read_text(opts.prompt_file, "prompt file", prompt_bytes_cap())


def split_skills(values):
    if not values:
        return None
    return [skill.strip() for value in values for skill in value.split(",") if skill.strip()]


def parse_file_refs(values) -> list:
    refs = []
    for value in values or ():
        file_id, sep, filename = value.partition(":")
        if not sep or not file_id.strip() or not filename.strip():
            raise UsageError(f"--file-ref takes ID:FILENAME as printed by `upload`, got {value!r}")
        # The name as printed, spaces kept: the API wants the exact name POST /v1/files gave.
        refs.append({"id": file_id.strip(), "filename": filename})
    return refs


def upload_all(client, out: Output, paths) -> list:
    refs = []
    for path in paths or ():
        name = os.path.basename(path)
        size = os.path.getsize(path)
        upload = functools.partial(client.files.upload, path)
        ref = TransferBar(out, "uploading").carry(name, size, upload)
        out.progress(f"uploaded {name} ({format_size(size)}) as {ref['filename']}")
        refs.append({**ref, "path": path})
    return refs


def attach_files(client, out: Output, paths, refs) -> list:
    """Upload the paths; return every file reference to attach, the given ones first."""
    uploaded = upload_all(client, out, paths)
    return refs + [{"id": ref["id"], "filename": ref["filename"]} for ref in uploaded]


def plan_task(rc, prompt: str, *, paths, refs, local_repo: bool = False, **options) -> dict:
    """Check a task whole before anything is uploaded or created; return its plan.

    `options` are create_task's keywords. With `local_repo` the prompt is checked as
    long as it will be once plan_with_handoff adds the round trip's block to it.
    """
    check_upload_paths(rc, paths)
    checked = prompt_to_check(prompt) if local_repo else prompt
    body = planned_body(rc, checked, paths, refs, options)
    return {"prompt": prompt, "paths": list(paths), "refs": refs, "options": options, "body": body}


def planned_body(rc, prompt: str, paths, refs, options: dict) -> dict:
    """The create request as it will be sent, each file still to upload standing in for
    its reference."""
    planned = refs + [
        {"id": f"<upload of {path}>", "filename": os.path.basename(path)} for path in paths
    ]
    return rc.Tasks.body(prompt, files=planned or None, **options)


def create_planned(client, out: Output, run: Run, plan: dict) -> dict:
    """Upload the plan's files, then create its task (counted as in flight while it is sent).

    The create is written to the local record before it is sent and completed when
    its answer comes, so that neither its id nor its workspace can be lost.
    """
    from rebyte import record  # here: `--help` and the other commands need none of it

    files = attach_files(client, out, plan["paths"], plan["refs"])
    workspace = plan["options"].get("workspace_id")
    if workspace:
        out.progress(f"creating the task in workspace {workspace}")
    else:
        out.progress("creating the task (provisioning its VM can take a while)")
    host = api_host(client)
    fingerprint = record.prompt_fingerprint(plan.get("asked") or plan["prompt"])
    warn_if_repeated(out, host, fingerprint["promptHash"])
    options = plan["options"]
    with run.sending("create"):
        task = send_recorded(
            lambda: client.tasks.create(plan["prompt"], files=files or None, **options),
            "task",
            host,
            **fingerprint,
            batch=plan.get("name"),
            workspaceId=workspace,
            executor=options.get("executor"),
            model=options.get("model"),
        )
    run.remember(task)
    return task


def warn_if_repeated(out: Output, host: str, prompt_hash: str) -> None:
    """Say so before a create that repeats one from this machine whose answer never came."""
    from rebyte import record

    earlier = record.unanswered_like(host, prompt_hash, REPEAT_WARNING_SECONDS)
    if earlier:
        out.warn(
            f"the same prompt was sent from here at {earlier[0].get('at')} and no "
            f"answer came back: it may have created a task. See `{RUN} recent` (sending anyway)"
        )


CreateOptions = options(
    "CreateOptions",
    "client prompt prompt_file skills files file_refs executor model github_url branch workspace"
    " new_computer public dry_run wait watch wait_timeout interval download"
    " local_repo attempts allow_secrets max_snapshot_mb",
)


def cmd_create(args, out: Output, run: Run) -> int:
    opts = CreateOptions.of(args)
    rc = load_client_module()
    wait_options = waiting(opts)  # its checks come before anything is sent
    local = local_repo_request(opts)
    prompt = read_prompt(opts)
    plan = plan_task(
        rc,
        prompt,
        local_repo=local is not None,
        paths=opts.files or (),
        refs=parse_file_refs(opts.file_refs),
        executor=opts.executor,
        model=opts.model,
        skills=split_skills(opts.skills),
        github_url=opts.github_url,
        branch_name=opts.branch,
        workspace_id=NEW_COMPUTER if opts.new_computer else opts.workspace,
    )
    client = make_client(opts.client)
    if opts.dry_run:
        out.result(dry_run_document(rc, client, out, opts, plan, local, prompt))
        return EXIT_OK
    # The snapshot before anything is sent: its refusals (secrets, size) cost nothing.
    snapshot = take_snapshot(out, local) if local else None
    if opts.new_computer:
        # Named after its task, so that `computer list` says what it was made for.
        computer = create_computer(client, out, run, name=" ".join(prompt.split())[:60])
        wait_for_computer(
            client, out, computer["id"], timeout=COMPUTER_WAIT_TIMEOUT, interval=opts.interval
        )
        plan = {**plan, "options": {**plan["options"], "workspace_id": computer["id"]}}
    if snapshot is None:
        task = create_planned(client, out, run, plan)
        out.note(f"task {task['id']} is running: {task.get('url')}")
    else:
        tasks = create_attempts(
            client,
            out,
            run,
            plan_with_handoff(plan, hand_off(client, out, snapshot)),
            local.attempts,
        )
        if len(tasks) > 1:
            return finish_attempts(client, out, run, tasks, opts)
        task = tasks[0]
    if opts.public:
        task = share_publicly(client, out, task)
    asked = {key: value for key, value in (("executor", opts.executor), ("model", opts.model))}
    asked = {key: value for key, value in asked.items() if value}
    return finish_with_wait(
        client, out, run, task, prompt_id=None, asked=asked or None, **wait_options
    )


def dry_run_document(rc, client, out: Output, opts, plan: dict, local, prompt: str) -> dict:
    """What `create --dry-run` prints: the requests it would send, and the snapshot's summary
    with `--local-repo` (made in a scratch folder, so the body carries the real prompt)."""
    body, summary = plan["body"], None
    if local:
        summary, full_prompt, bundle = dry_run_snapshot(out, local, prompt)
        refs = plan["refs"] + [bundle]
        body = planned_body(rc, full_prompt, plan["paths"], refs, plan["options"])
    request = client.describe_request("POST", "/tasks", body)
    document = {"dryRun": True, "uploads": plan["paths"], "request": request}
    if summary:
        document["localRepo"] = summary
    if opts.new_computer:
        document["computerRequest"] = client.describe_request("POST", "/agent-computers", {})
    return document


def share_publicly(client, out: Output, task: dict) -> dict:
    shared = client.tasks.set_visibility(task["id"], "public")
    out.note(f"shared publicly: {shared.get('shareUrl')}")
    return {**task, "visibility": shared.get("visibility"), "shareUrl": shared.get("shareUrl")}


def create_attempts(client, out: Output, run: Run, plan: dict, attempts: int) -> list:
    """Create the round trip's tasks on one uploaded snapshot, each recorded with it.

    Each create is sent once (never repeated on an unknown outcome): a failure stops
    the rest, and the tasks made before it are printed before the error is raised.
    """
    rc = load_client_module()
    handoff = plan["handoff"]
    tasks = []
    for attempt in range(1, attempts + 1):
        try:
            task = create_planned(client, out, run, plan)
        except rc.RebyteError:
            if tasks:
                out.result(tasks if len(tasks) > 1 else tasks[0], [t.get("url") for t in tasks])
            raise
        remember_handoff(task["id"], handoff, attempt if attempts > 1 else None)
        task = {**task, "snapshot": handoff.snapshot.sha}  # the state it was given
        which = f" (attempt {attempt}/{attempts})" if attempts > 1 else ""
        out.note(f"task {task['id']} is running{which}: {task.get('url')}")
        tasks.append(task)
    out.note(next_steps([task["id"] for task in tasks]))
    return tasks


def finish_attempts(client, out: Output, run: Run, tasks: list, opts) -> int:
    """Several attempts: shared if asked, then listed (`ID<TAB>URL` with -q) or waited for."""
    if opts.public:
        tasks = [share_publicly(client, out, task) for task in tasks]
    if opts.wait:
        return wait_and_report(
            client,
            out,
            run,
            [task["id"] for task in tasks],
            prompt_id=None,
            timeout=opts.wait_timeout,
            interval=opts.interval,
        )
    out.result(tasks, [tab_line(task["id"], task.get("url")) for task in tasks])
    return EXIT_OK


NEW_COMPUTER = "<new computer>"  # the workspace of `create --new-computer`, before it exists


FollowUpOptions = options(
    "FollowUpOptions",
    "client task_id prompt prompt_file skills files file_refs"
    " wait watch wait_timeout interval download workspace",
)


def cmd_follow_up(args, out: Output, run: Run) -> int:
    opts = FollowUpOptions.of(args)
    rc = load_client_module()
    wait_options = waiting(opts)  # its checks come before anything is sent
    task_id, prompt, paths = opts.task_id, read_prompt(opts), opts.files
    skills = split_skills(opts.skills)
    rc.check_task_id(task_id)
    prompt = follow_up_prompt(task_id, prompt)
    rc.check_prompt(prompt)
    check_upload_paths(rc, paths)
    refs = parse_file_refs(opts.file_refs)
    client = make_client(opts.client)
    run.remember({"id": task_id})  # so that Ctrl-C names it, URL or not
    files = attach_files(client, out, paths, refs)
    with run.sending("followup"):
        answer = client.tasks.follow_up(task_id, prompt, skills=skills, files=files or None)
    prompt_id = answer["promptId"]
    task = client.tasks.get(task_id)
    run.remember(task)
    out.note(f"follow-up {prompt_id} sent to task {task_id}: {task.get('url')}")
    summary = {**task, "promptId": prompt_id}
    return finish_with_wait(
        client,
        out,
        run,
        summary,
        prompt_id=prompt_id,
        workspace_id=opts.workspace,
        **wait_options,
    )


UploadOptions = options("UploadOptions", "client paths")


def cmd_upload(args, out: Output, run: Run) -> int:
    opts = UploadOptions.of(args)
    rc = load_client_module()
    check_upload_paths(rc, opts.paths)
    refs = upload_all(make_client(opts.client), out, opts.paths)
    document = refs[0] if len(refs) == 1 else refs
    out.result(document, [f"{ref['id']}:{ref['filename']}" for ref in refs])
    return EXIT_OK


COMMANDS = commands(
    command(
        ["create"],
        _create_arguments,
        cmd_create,
        examples=[
            f'{RUN} create --prompt "Summarize the README" --github-url owner/repo --wait -q',
            f'{RUN} create --prompt "Chart the sales in the attached CSV" --file data.csv',
        ],
        quiet="the task's URL; with --wait or --watch, the agent's answer\n"
        "  (its URL when there is none; nothing when the wait times out)",
        # argparse's usage would list every option again: 700 of --help's bytes.
        usage="%(prog)s (--prompt TEXT | --prompt-file PATH) [options]",
        details="more: references/examples.md, in this skill's folder",
    ),
    command(
        ["follow-up"],
        _follow_up_arguments,
        cmd_follow_up,
        examples=[
            f'{RUN} follow-up TASK_ID --prompt "Now add tests for it" --wait',
            f'{RUN} follow-up TASK_ID --prompt "Write the report as PDF" --wait --download results',
        ],
        quiet="the task's URL; with --wait or --watch, the answer to this follow-up\n"
        "  (the URL when there is none; nothing when the wait times out)",
    ),
    command(
        ["upload"],
        _upload_arguments,
        cmd_upload,
        examples=[f"{RUN} upload data.csv -q"],
        quiet="one ID:FILENAME per file, as --file-ref takes it",
    ),
)
