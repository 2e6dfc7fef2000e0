"""The commands on existing tasks: get, list, wait, watch, result, cancel, share, delete, recent."""

from __future__ import annotations

import argparse

from .errors import (
    EXIT_OK,
    EXIT_TASK_FAILED,
    EXIT_WAIT_TIMEOUT,
    TaskOutcome,
    UsageError,
)
from .options import (
    add_wait_options,
    add_wait_timeout,
    command,
    commands,
    many_tasks_argument,
    one_task_argument,
    options,
    whole,
)
from .output import RUN, Output, tab_line
from .session import Run, api_host, confirm, delete_many, load_client_module, make_client
from .waiting import (
    answer_once,
    answer_or_url,
    outcome_code,
    run_concurrently,
    say_if_unavailable,
    wait_and_report,
    watch_events,
)

STATUS_FETCHES = 8  # task statuses `list` fetches at once (list entries carry none)
TASK_STATUSES = ("running", "completed", "failed", "canceled")


def _list_arguments(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--limit", type=whole(1, 100), default=50, help="1 to 100 (default 50)")
    listing.add_argument("--offset", type=whole(0), default=0, help="skip this many (default 0)")
    listing.add_argument("--all", action="store_true", help="every task, page by page")
    listing.add_argument(
        "--status",
        choices=TASK_STATUSES,
        help="only tasks with this status (with --all: among every task)",
    )
    listing.add_argument(
        "--no-status",
        action="store_true",
        help="no statuses: one request per page of up to 100 tasks; with statuses, each task"
        " whose entry has none (the API's list gives none) costs one more GET, 8 at once",
    )


def _wait_arguments(wait: argparse.ArgumentParser) -> None:
    many_tasks_argument(wait)
    wait.add_argument("--prompt-id", help="wait for this prompt (one task only)")
    add_wait_timeout(wait, "--timeout", "--wait-timeout")
    add_wait_options(wait, flags=())


def _watch_arguments(watch: argparse.ArgumentParser) -> None:
    one_task_argument(watch)
    watch.add_argument("--prompt-id", help="watch this prompt (default: the latest)")
    watch.add_argument("--json", action="store_true", help="events as JSON Lines on stdout")
    add_wait_timeout(watch, "--wait-timeout", verb="watch")


def _result_arguments(result: argparse.ArgumentParser) -> None:
    one_task_argument(result)
    result.add_argument("--prompt-id", help="the answer to this prompt (default: the latest)")


def _share_arguments(share: argparse.ArgumentParser) -> None:
    one_task_argument(share)
    share.add_argument("--visibility", choices=("public", "shared", "private"), default="public")


def _recent_arguments(recent: argparse.ArgumentParser) -> None:
    recent.add_argument(
        "--limit", type=whole(1, 1000), default=20, help="the newest N creates (default 20)"
    )
    recent.add_argument(
        "--offline",
        action="store_true",
        help="only the local record: do not ask the server about creates that got no answer",
    )


GetOptions = options("GetOptions", "client task_id")


def cmd_get(args, out: Output, run: Run) -> int:
    opts = GetOptions.of(args)
    task = answer_once(make_client(opts.client).tasks.get(opts.task_id))
    out.result(task, [task.get("url")])
    return EXIT_OK


ListOptions = options("ListOptions", "client limit offset all status no_status")


def cmd_list(args, out: Output, run: Run) -> int:
    opts = ListOptions.of(args)
    if opts.no_status and opts.status:
        raise UsageError("--status needs the statuses: drop --no-status")
    client = make_client(opts.client, concurrency=STATUS_FETCHES)
    if opts.all:
        tasks = list(client.tasks.iter())
        page = {"data": tasks, "total": len(tasks)}
    else:
        page = client.tasks.list(limit=opts.limit, offset=opts.offset)
    tasks = [task for task in page["data"] if isinstance(task, dict)]
    if not opts.no_status:
        tasks = with_statuses(client, tasks)
        if opts.status:
            tasks = [task for task in tasks if task.get("status") == opts.status]
    page = {**page, "data": tasks}
    if opts.all:
        page["total"] = len(tasks)
    plain = [tab_line(t.get("id"), t.get("status") or "-", t.get("title")) for t in tasks]
    out.result(page, plain)
    return EXIT_OK


def with_statuses(client, tasks: list) -> list:
    """Each task with its `status`: the entry's own, else one GET per task, a few at once.

    A task deleted between the listing and its GET is left out: it no longer exists.
    """
    rc = load_client_module()
    missing = [
        i
        for i, task in enumerate(tasks)
        if not isinstance(task.get("status"), str) and isinstance(task.get("id"), str)
    ]

    def status_of(index: int):
        try:
            status = client.tasks.get(tasks[index]["id"]).get("status")
        except rc.InputError:  # an id the server sent that no request path can hold
            return None
        return status if isinstance(status, str) else None

    outcomes = run_concurrently(status_of, missing, concurrency=STATUS_FETCHES)
    statuses, gone = {}, set()
    for index, (status, error) in zip(missing, outcomes):
        if isinstance(error, rc.NotFoundError):
            gone.add(index)
        elif error is not None:
            raise error
        elif status is not None:
            statuses[index] = status
    return [
        {**task, "status": statuses[i]} if i in statuses else task
        for i, task in enumerate(tasks)
        if i not in gone
    ]


WaitOptions = options("WaitOptions", "client task_ids prompt_id wait_timeout interval")


def cmd_wait(args, out: Output, run: Run) -> int:
    opts = WaitOptions.of(args)
    task_ids, prompt_id = opts.task_ids, opts.prompt_id
    if prompt_id and len(task_ids) > 1:
        raise UsageError("--prompt-id goes with a single TASK_ID")
    rc = load_client_module()
    for task_id in task_ids:
        rc.check_task_id(task_id)
    client = make_client(opts.client)
    for task_id in task_ids:
        run.remember({"id": task_id})
    return wait_and_report(
        client,
        out,
        run,
        task_ids,
        prompt_id=prompt_id,
        timeout=opts.wait_timeout,
        interval=opts.interval,
    )


WatchOptions = options("WatchOptions", "client task_id prompt_id json wait_timeout")


def cmd_watch(args, out: Output, run: Run) -> int:
    opts = WatchOptions.of(args)
    task_id, prompt_id, as_json = opts.task_id, opts.prompt_id, opts.json
    client = make_client(opts.client)
    run.remember({"id": task_id})
    run.remember(client.tasks.get(task_id))  # its URL, for Ctrl-C; 404 before streaming
    final = watch_events(
        client,
        out,
        task_id,
        timeout=opts.wait_timeout,
        prompt_id=prompt_id,
        as_json=as_json,
    )
    if not as_json:
        out.result(final, [answer_or_url(final)])
    say_if_unavailable(out, final)
    return outcome_code(final, prompt_id)


ResultOptions = options("ResultOptions", "client task_id prompt_id")


def cmd_result(args, out: Output, run: Run) -> int:
    opts = ResultOptions.of(args)
    task_id, prompt_id = opts.task_id, opts.prompt_id
    client = make_client(opts.client)
    task = client.tasks.get(task_id)
    status = task.get("status")
    if prompt_id:
        matches = [p for p in task.get("prompts") or [] if p.get("id") == prompt_id]
        if not matches:
            raise UsageError(f"task {task_id} has no prompt {prompt_id}")
        status = {"succeeded": "completed"}.get(matches[0].get("status"), matches[0].get("status"))
    if status in ("running", "pending"):
        out.result({"id": task["id"], "url": task.get("url"), "status": status, "result": None}, [])
        raise TaskOutcome(
            EXIT_WAIT_TIMEOUT,
            f"task {task_id} is still running; wait for it with: {RUN} wait {task_id}",
        )
    answer = client.tasks.result(task_id, prompt_id=prompt_id)
    document = {"id": task["id"], "url": task.get("url"), "status": status, "result": answer}
    if prompt_id:
        document["promptId"] = prompt_id
    if answer is None and status == "completed":
        document["resultAvailable"] = False
    out.result(document, [answer] if answer is not None else [])
    if status != "completed":
        raise TaskOutcome(EXIT_TASK_FAILED, f"task {task_id} {status}: {task.get('url')}")
    say_if_unavailable(out, document)
    return EXIT_OK


CancelOptions = options("CancelOptions", "client task_id")


def cmd_cancel(args, out: Output, run: Run) -> int:
    opts = CancelOptions.of(args)
    client = make_client(opts.client)
    answer = client.tasks.cancel(opts.task_id)
    document = {"id": opts.task_id, **answer}
    if not isinstance(document.get("status"), str):  # the answer's shape is undocumented
        document["status"] = client.tasks.get(opts.task_id).get("status")
    out.result(document, [document.get("status")])
    return EXIT_OK


ShareOptions = options("ShareOptions", "client task_id visibility")


def cmd_share(args, out: Output, run: Run) -> int:
    opts = ShareOptions.of(args)
    answer = make_client(opts.client).tasks.set_visibility(opts.task_id, opts.visibility)
    document = {"id": opts.task_id, **answer}
    out.result(document, [answer.get("shareUrl") or answer.get("visibility")])
    return EXIT_OK


DeleteOptions = options("DeleteOptions", "client task_ids yes")


def cmd_delete(args, out: Output, run: Run) -> int:
    opts = DeleteOptions.of(args)
    task_ids, yes = opts.task_ids, opts.yes
    rc = load_client_module()
    for task_id in task_ids:
        rc.check_task_id(task_id)
    what = f"task {task_ids[0]}" if len(task_ids) == 1 else f"{len(task_ids)} tasks"
    confirm(f"delete {what}", yes=yes)
    return delete_many(rc, out, task_ids, make_client(opts.client).tasks.delete, "task")


CANDIDATE_CLOCK_SKEW = 120.0  # seconds a server's createdAt may run ahead of ours


RecentOptions = options("RecentOptions", "client limit offline")


def cmd_recent(args, out: Output, run: Run) -> int:
    """What this machine created lately (the local record), and, for each create whose
    answer never came, the tasks the server shows created since: maybe its task."""
    opts = RecentOptions.of(args)
    from rebyte import record

    made = record.creates()[: opts.limit]
    client = None if opts.offline else make_client(opts.client)
    host = api_host(client) if client is not None else None
    entries = [_shown_create(entry) for entry in made]
    pending = [
        shown
        for shown, entry in zip(entries, made)
        if entry.get("state") == "pending"
        and entry.get("kind") == "task"
        and entry.get("host") == host
    ]
    if pending:
        known = {e.get("id") for e in record.creates() if e.get("id")}
        page = client.tasks.list(limit=100)["data"]
        listed = [t for t in page if isinstance(t, dict) and t.get("id") not in known]
        for entry in pending:
            entry["candidates"] = candidates_for(entry, listed)
    plain = []
    for entry in entries:
        plain.append(
            tab_line(
                entry.get("at"),
                "deleted" if entry.get("deleted") else entry.get("state"),
                entry.get("id") or "-",
                entry.get("url") or "-",
                entry.get("prompt") or entry.get("name") or "-",
            )
        )
        for task in entry.get("candidates") or ():
            plain.append(
                tab_line(
                    task.get("createdAt"),
                    "maybe",
                    task.get("id"),
                    task.get("url") or "-",
                    task.get("title") or "-",
                )
            )
    if not record.enabled():
        out.note(f"the local record is off ({record.RECORD_ENV}): nothing new is written")
    out.result({"data": entries, "record": record.record_path()}, plain)
    return EXIT_OK


# What `recent` shows of a create: the record's bookkeeping (ref, hash, answer time) stays in.
RECENT_FIELDS = (
    "at", "state", "kind", "id", "url", "workspaceId", "prompt", "name", "batch", "deleted"
)  # fmt: skip


def _shown_create(entry: dict) -> dict:
    return {key: entry[key] for key in RECENT_FIELDS if entry.get(key) is not None}


def candidates_for(entry: dict, tasks: list) -> list:
    """The listed tasks created since a create was sent: those whose title starts like its
    prompt first (`match: "title"`), then the others by time (`match: "time"`)."""
    from rebyte import record

    sent = record.parse_iso(entry.get("at"))
    if sent is None:
        return []
    start = _comparable(entry.get("prompt"))
    found = []
    for task in tasks:
        created = record.parse_iso(task.get("createdAt"))
        if created is None or created < sent - CANDIDATE_CLOCK_SKEW:
            continue
        title = _comparable(task.get("title"))
        alike = bool(start and title) and (start.startswith(title) or title.startswith(start))
        shown = {key: task.get(key) for key in ("id", "url", "title", "createdAt")}
        found.append({**shown, "match": "title" if alike else "time"})
    return sorted(found, key=lambda t: t["match"] != "title")


def _comparable(text) -> str:
    """A prompt's start or a title, as the two are compared: lower case, spaces folded,
    the first 24 characters (a title is often the prompt's first words)."""
    return " ".join(str(text or "").lower().split())[:24]


COMMANDS = commands(
    command(
        ["get"],
        one_task_argument,
        cmd_get,
        examples=[f"{RUN} get TASK_ID"],
        quiet="the task's URL",
    ),
    command(
        ["list"],
        _list_arguments,
        cmd_list,
        examples=[f"{RUN} list --limit 5", f"{RUN} list --all --status completed -q"],
        quiet="one line per task: ID<TAB>STATUS<TAB>TITLE (STATUS is - with --no-status)",
    ),
    command(
        ["wait"],
        _wait_arguments,
        cmd_wait,
        examples=[f"{RUN} wait TASK_ID TASK_ID_2 --wait-timeout 1800"],
        timeout=False,
        quiet="the agent's answer (the task's URL when there is none, nothing on a\n"
        "  timeout); with several tasks, one line each:\n"
        "  ID<TAB>STATUS<TAB>ANSWER-ON-ONE-LINE-OR-URL",
    ),
    command(
        ["watch"],
        _watch_arguments,
        cmd_watch,
        examples=[f"{RUN} watch TASK_ID", f"{RUN} watch TASK_ID --json"],
        quiet="no events; the agent's answer at the end (the URL when there is none)",
    ),
    command(
        ["result"],
        _result_arguments,
        cmd_result,
        examples=[f"{RUN} result TASK_ID -q"],
        quiet="the answer as plain text (nothing when there is none)",
    ),
    command(
        ["cancel"],
        one_task_argument,
        cmd_cancel,
        examples=[f"{RUN} cancel TASK_ID"],
        quiet="the task's status after the cancel",
    ),
    command(
        ["share"],
        _share_arguments,
        cmd_share,
        examples=[f"{RUN} share TASK_ID", f"{RUN} share TASK_ID --visibility private"],
        quiet="the share URL (the visibility when there is none)",
    ),
    command(
        ["delete"],
        many_tasks_argument,
        cmd_delete,
        examples=[f"{RUN} delete TASK_ID --yes"],
        destroys=True,
        quiet="the id of each task deleted",
    ),
    command(
        ["recent"],
        _recent_arguments,
        cmd_recent,
        examples=[f"{RUN} recent --limit 5", f"{RUN} recent --offline -q"],
        quiet="one line per create: TIME<TAB>STATE<TAB>ID<TAB>URL<TAB>PROMPT-START;\n"
        "  after a pending one, TIME<TAB>maybe<TAB>ID<TAB>URL<TAB>TITLE per likely task",
    ),
)
