"""What the commands that wait or watch share: the wait display, waiting for many tasks at
once, the event stream, the answer, and finishing a create or follow-up that waits."""

from __future__ import annotations

import json
import os

from .errors import EXIT_OK, EXIT_TASK_FAILED, UsageError, exit_code_for, worst_exit
from .fetching import fetch_artifacts
from .output import RUN, Output, one_line, short_id, tab_line
from .session import MAX_PARALLEL_WAITS, Run, load_client_module


def _prompt_counts(task: dict):
    prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
    done = sum(1 for p in prompts if p.get("status") in ("succeeded", "failed", "canceled"))
    return done, len(prompts)


def _status_word(out: Output, status) -> str:
    color = {"completed": "green", "succeeded": "green", "failed": "red", "canceled": "yellow"}
    return out.paint(str(status), color.get(status, "bold"))


class WaitDisplay:
    """Shows what a wait sees: one live line for all tasks, or plain lines per change."""

    def __init__(self, out: Output, task_ids) -> None:
        self._out = out
        self._states = {task_id: None for task_id in task_ids}
        self._said = {}  # task id -> its last plain progress line
        self._line = out.live(self._render) if out.tty else None

    def seen(self, task: dict) -> None:
        self._states[task.get("id")] = task
        if self._line is not None:
            self._line.update()
        else:
            done, total = _prompt_counts(task)
            text = f"task {task.get('id')}: {task.get('status')} ({done}/{total} prompts done)"
            if self._said.get(task.get("id")) != text:  # a line per change, not per poll
                self._said[task.get("id")] = text
                self._out.progress(text)

    def close(self) -> None:
        if self._line is not None:
            self._line.close()

    def _render(self, line) -> str:
        tasks = [t for t in self._states.values() if t]
        if len(self._states) == 1 and tasks:
            task = tasks[0]
            done, total = _prompt_counts(task)
            return (
                f"{line.elapsed()}  task {short_id(task.get('id', ''))} "
                f"{_status_word(self._out, task.get('status'))}  prompts {done}/{total}"
            )
        counts = {}
        for task in tasks:
            counts[task.get("status")] = counts.get(task.get("status"), 0) + 1
        summary = ", ".join(f"{n} {_status_word(self._out, s)}" for s, n in sorted(counts.items()))
        return f"{line.elapsed()}  {len(self._states)} tasks: {summary or 'starting'}"


def outcome_code(task: dict, prompt_id=None) -> int:
    """0 when the task (or that prompt) succeeded, 1 when it failed or was canceled."""
    if prompt_id:
        for prompt in task.get("prompts") or []:
            if isinstance(prompt, dict) and prompt.get("id") == prompt_id:
                return EXIT_OK if prompt.get("status") == "succeeded" else EXIT_TASK_FAILED
    return EXIT_OK if task.get("status") == "completed" else EXIT_TASK_FAILED


def answer_once(task: dict) -> dict:
    """The task with the agent's answer once, as `result`: the server's `finalResult` goes."""
    shown = dict(task)
    final = shown.pop("finalResult", None)
    if shown.get("result") is None and isinstance(final, str):
        shown["result"] = final
    return shown


def without_answer(task: dict) -> dict:
    """The task without `finalResult`: it answers the latest prompt, maybe not the one waited on."""
    return {key: value for key, value in task.items() if key != "finalResult"}


def with_result(client, task: dict, prompt_id=None, settle=None) -> dict:
    """The task, plus `result` (the agent's answer) when the server has one.

    A prompt that succeeded with no answer anywhere in the API gets `"result": null`
    and `"resultAvailable": false`: the answer is only on the task's page, which is
    not the same as an empty answer (`"result": ""`). `settle`: the most seconds to
    spend waiting for an answer that lags its status (the client's default if None).
    """
    rc = load_client_module()
    options = {} if settle is None else {"settle": settle}
    try:
        answer = client.tasks.result(task["id"], prompt_id=prompt_id, **options)
    except rc.RebyteError:  # the answer is a bonus: failing to fetch it does not fail the task
        return without_answer(task)
    task = without_answer(task)  # its finalResult may answer an earlier prompt than prompt_id
    if answer is not None:
        return {**task, "result": answer}
    if outcome_code(task, prompt_id) == EXIT_OK:
        return {**task, "result": None, "resultAvailable": False}
    return task


def say_if_unavailable(out: Output, document: dict) -> None:
    """One stderr line where a finished task's answer cannot be had through the API."""
    if document.get("resultAvailable") is False:
        out.note(
            f"task {document.get('id')}: its answer is not available through the API; "
            f"read it on the task's page: {document.get('url')}"
        )


def wait_many(
    client, out: Output, run: Run, task_ids, *, prompt_id, timeout, interval, on_done=None
):
    """Wait for each task concurrently; return [(task_id, task or None, error or None)].

    `on_done(index, task_id, task, error)` is called as each task ends, in the order they end.
    """
    rc = load_client_module()
    display = WaitDisplay(out, task_ids)

    def seen(task: dict) -> None:
        run.remember(task)  # so that Ctrl-C can print the URL of a task given by id
        display.seen(task)

    import time

    deadline = time.monotonic() + timeout  # one deadline for all, however many wait at once

    def wait_one(task_id):
        try:
            task = client.tasks.wait(
                task_id,
                prompt_id=prompt_id,
                timeout=max(deadline - time.monotonic(), 0.001),
                poll_interval=interval,
                on_status=seen,
                use_events=True,  # one long request instead of a poll every few seconds
            )
        except rc.WaitTimeoutError as error:  # said with the time the user gave, not what was left
            status = (error.last_task or {}).get("status", "unknown")
            raise rc.WaitTimeoutError(
                f"timed out after {timeout:g}s waiting for task {task_id} (last status: {status})",
                task_id=task_id,
                prompt_id=prompt_id,
                last_task=error.last_task,
                last_error=error.last_error,
            ) from None
        run.remember(task)
        settle = min(client.result_settle, max(deadline - time.monotonic(), 0.0))
        return with_result(client, task, prompt_id, settle=settle)

    finished = [None] * len(task_ids)

    def settled(index: int, task, error) -> None:
        if task is None and isinstance(error, rc.WaitTimeoutError) and error.last_task:
            task = {**without_answer(error.last_task), "timedOut": True}
        finished[index] = (task_ids[index], task, error)
        if on_done is not None:
            on_done(index, *finished[index])

    try:
        run_concurrently(wait_one, task_ids, concurrency=MAX_PARALLEL_WAITS, on_done=settled)
    finally:
        display.close()
    return finished


def run_concurrently(func, items, *, concurrency: int, on_done=None):
    """Run func over items in daemon threads; return [(result, error)] in order.

    Daemon threads and a polling join keep Ctrl-C responsive: the main
    thread never blocks in an uninterruptible wait.
    """
    import queue
    import threading

    items = list(items)
    results = [(None, None)] * len(items)
    todo = queue.Queue()
    for index, item in enumerate(items):
        todo.put((index, item))
    finished = queue.Queue()

    def worker():
        while True:
            try:
                index, item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = (func(item), None)
            except Exception as error:  # reported per item; the others go on
                outcome = (None, error)
            finished.put((index, outcome))

    for _ in range(max(1, min(concurrency, len(items)))):
        threading.Thread(target=worker, daemon=True).start()
    for _ in items:
        while True:
            try:
                index, outcome = finished.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        results[index] = outcome
        if on_done is not None:
            on_done(index, *outcome)
    return results


def watch_events(
    client, out: Output, task_id: str, *, timeout: float, prompt_id=None, as_json=False
) -> dict:
    """Print the agent's events until the prompt ends; return the final task with its result.

    The `done` line of `--json` comes last, once the answer is known (it carries
    `result`, and `resultAvailable: false` where the API has none). When the time
    runs out, the task as it stands is printed before the timeout is raised.
    """
    rc = load_client_module()
    done = None
    events = client.tasks.events(task_id, prompt_id=prompt_id, timeout=timeout)
    try:
        for event in events:
            if event.get("eventType") == "done":
                done = event
            else:
                show_event(out, event, task_id, as_json)
    except rc.WaitTimeoutError as error:
        return report_wait_failure(out, None if as_json else client.tasks.get(task_id), error)
    task = agree_with_done(client.tasks.get(task_id), done, prompt_id)
    final = with_result(client, task, prompt_id)
    if done and done.get("finalResult") and not final.get("result"):
        final.pop("resultAvailable", None)
        final["result"] = done["finalResult"]
    if as_json:
        line = {**without_answer(done or {"eventType": "done"}), "status": final.get("status")}
        line["result"] = final.get("result")
        if final.get("resultAvailable") is False:
            line["resultAvailable"] = False
        out.json_line(line)
    return final


def agree_with_done(task: dict, done, prompt_id=None) -> dict:
    """The task as the stream's `done` says it ended, when the read that follows still
    lags behind (says running): the done event is the news, the read only catches up.
    The done's status may be a task word (completed) or a prompt word (succeeded)."""
    rc = load_client_module()
    status = rc.task_status_of((done or {}).get("status"))
    if status not in ("completed", "failed", "canceled"):
        return task
    if prompt_id:
        prompt_status = {"completed": "succeeded"}.get(status, status)
        prompts = [
            {**p, "status": prompt_status}
            if isinstance(p, dict)
            and p.get("id") == prompt_id
            and p.get("status") not in ("succeeded", "failed", "canceled")
            else p
            for p in task.get("prompts") or []
        ]
        return {**task, "prompts": prompts}
    if task.get("status") in ("completed", "failed", "canceled"):
        return task
    return {**task, "status": status}


def show_event(out: Output, event: dict, task_id: str, as_json: bool) -> None:
    if as_json:
        out.json_line(event)
        return
    text = format_event(out, event, task_id)
    if text:
        out.note(text)


def _payload_text(payload) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in ("text", "message", "content", "question", "output", "result", "summary"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return json.dumps(payload, ensure_ascii=False) if payload is not None else ""


def _clip(text: str, limit: int = 300) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_event(out: Output, event: dict, task_id: str) -> str:
    """One readable line for an agent event."""
    kind = event.get("eventType")
    payload = event.get("payload")
    if kind == "init":
        return out.paint("● agent started", "dim")
    if kind == "thinking":
        return out.paint(f"… {_clip(_payload_text(payload))}", "dim")
    if kind == "tool_use":
        tool = payload.get("tool") or payload.get("name") if isinstance(payload, dict) else None
        given = payload.get("input") if isinstance(payload, dict) else payload
        shown = (
            _payload_text(given)
            if not isinstance(given, dict)
            else " ".join(str(v) for v in given.values())
        )
        return f"→ {tool or 'tool'}: {_clip(shown, 200)}"
    if kind == "tool_result":
        shown = _clip(_payload_text(payload), 200)
        return out.paint(f"← {shown}", "dim") if shown else ""
    if kind == "text":
        return _payload_text(payload)
    if kind == "result":
        if isinstance(payload, dict) and payload.get("isError"):
            reason = payload.get("error") or payload.get("message") or "no reason given"
            return out.paint("✘ failed: ", "red") + _clip(str(reason), 2000)
        return out.paint("✔ result: ", "green") + _clip(_payload_text(payload), 2000)
    if kind == "polling":
        return out.paint("(the server has no event stream for this task: polling it)", "dim")
    if kind == "status":
        prompts = event.get("prompts") or []
        done = sum(1 for status in prompts if status in ("succeeded", "failed", "canceled"))
        return out.paint(f"status: {event.get('status')} ({done}/{len(prompts)} prompts)", "dim")
    if kind == "ask_user_question":
        question = _payload_text(payload)
        return (
            out.paint("? the agent asks: ", "yellow")
            + one_line(question)
            + f'\n  answer with: {RUN} follow-up {task_id} --prompt "..."'
        )
    return f"[{kind}] {_clip(_payload_text(payload))}"


def wait_and_report(client, out: Output, run: Run, task_ids, *, prompt_id, timeout, interval):
    """Wait for the tasks, print them (one document, or a list), return the exit code.

    With -q: one task's answer (or URL); several, `ID<TAB>STATUS<TAB>ANSWER-or-URL` each.
    """
    rc = load_client_module()
    finished = wait_many(
        client, out, run, task_ids, prompt_id=prompt_id, timeout=timeout, interval=interval
    )
    documents = [task if task is not None else {"id": task_id} for task_id, task, _ in finished]
    errors = [error for _, _, error in finished if error is not None]
    if len(documents) == 1:
        document = documents[0]
        if errors:
            return report_wait_failure(out, finished[0][1], errors[0])
        plain = [answer_or_url(document)]
    else:
        for (task_id, _, error), doc in zip(finished, documents):
            if error is not None:
                doc["error"] = one_line(str(error))
                out.error(f"task {task_id}: {error}")
        document = documents
        plain = [tab_line(d["id"], d.get("status"), answer_or_url(d)) for d in documents]
    out.result(document, plain)
    for doc in documents:
        say_if_unavailable(out, doc)
    if errors:
        return worst_exit([exit_code_for(rc, e) for e in errors])
    return worst_exit([outcome_code(doc, prompt_id) for doc in documents])


def waiting(opts) -> dict:
    """How `create` and `follow-up` were asked to wait (their options: wait, watch, wait_timeout,
    interval, download), as finish_with_wait's keywords."""
    if opts.download is not None:
        if not (opts.wait or opts.watch):
            raise UsageError("--download needs --wait or --watch (the files come when it ends)")
        if os.path.exists(opts.download) and not os.path.isdir(opts.download):
            raise UsageError(f"--download {opts.download} is not a folder")
    return {
        "wait": opts.wait,
        "watch": opts.watch,
        "timeout": opts.wait_timeout,
        "interval": opts.interval,
        "download": opts.download,
    }


def finish_with_wait(
    client,
    out: Output,
    run: Run,
    task: dict,
    *,
    prompt_id,
    wait,
    watch,
    timeout,
    interval,
    download=None,
    workspace_id=None,
    asked=None,
) -> int:
    """Print the task, after waiting or watching when asked; return the exit code.

    With `download`, the workspace's artifacts are fetched into that folder once the
    task ends, and their local paths join the result as "artifacts". The workspace is
    `workspace_id`, else the create answer's (`task`), else as workspace_for finds it.
    `asked`: the executor and model the user asked for, checked against what runs.
    """
    # Over 60 lines: mostly keyword arguments passed on one per line, and the docstring.
    if not (wait or watch):
        task = without_answer(task)
        if asked:
            task = {**task, **what_runs(client, out, task, asked)}
        out.result(task, [task.get("url")])
        return EXIT_OK
    if watch:
        final = watch_events(client, out, task["id"], timeout=timeout, prompt_id=prompt_id)
    else:
        [(task_id, final, error)] = wait_many(
            client,
            out,
            run,
            [task["id"]],
            prompt_id=prompt_id,
            timeout=timeout,
            interval=interval,
        )
        if error is not None:
            return report_wait_failure(out, final, error)
    merged = {**without_answer(task), **final}
    if asked:
        merged.update(what_runs(client, out, merged, asked))
    fetched = EXIT_OK
    if download is not None:
        files, _, fetched = fetch_artifacts(
            client,
            out,
            merged["id"],
            None,
            download,
            workspace_id=workspace_id or task.get("workspaceId"),
            overwrite=False,
            replace_hint=f"use `{RUN} artifacts download {merged['id']} NAME --overwrite` "
            "to replace it, or another --download folder",
            existing_is_error=False,
        )
        merged["artifacts"] = files
    out.result(merged, [answer_or_url(merged)])
    say_if_unavailable(out, merged)
    code = worst_exit([outcome_code(merged, prompt_id), fetched])
    if code != EXIT_OK:
        out.note(f"task {merged['id']} ended {merged.get('status')}: {merged.get('url')}")
    return code


def what_runs(client, out: Output, task: dict, asked: dict) -> dict:
    """The executor and model the task runs with, beside those asked for (`requested`).

    The service may ignore both, and only the task view says what runs: it is read
    once when `task` (a create answer) does not show it, and a difference is said on
    stderr.
    """
    rc = load_client_module()
    view = task
    if not all(key in task for key in asked):
        try:
            view = client.tasks.get(task["id"])
        except rc.RebyteError:  # only a check: the task exists and runs either way
            return {"requested": asked}
    runs = {key: view.get(key) for key in asked if isinstance(view.get(key), str)}
    differ = {key: value for key, value in runs.items() if value != asked[key]}
    if differ:
        said = ", ".join(f"{key} {asked[key]}" for key in differ)
        shown = ", ".join(f"{key} {value}" for key, value in differ.items())
        out.note(f"task {task.get('id')}: asked for {said}, but it runs with {shown}")
    return {**runs, "requested": asked}


def answer_or_url(task: dict):
    """What -q prints for a waited task: the answer, or its URL when there is none."""
    answer = task.get("result")
    return answer if isinstance(answer, str) and answer.strip() else task.get("url")


def report_wait_failure(out: Output, last_task, error) -> int:
    """Print what is known of a task whose wait ended without an outcome, and re-raise.

    With -q nothing goes to stdout: `ANSWER=$(... --wait -q)` must not take the URL
    for an answer. The error on stderr names the URL instead (see explain).
    """
    if last_task is not None:
        last_task = without_answer(last_task)
        if getattr(error, "last_task", False) is None:  # a timeout that saw no task
            error.last_task = last_task
        if not out.quiet:
            out.result(last_task)
    raise error
