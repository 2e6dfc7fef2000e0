"""`RebyteClient`: the configuration of `_Transport` and the endpoints.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
)

from .bodies import (
    _artifact_entry_name,
    _artifact_items,
    _artifact_size,
    _check_task_shape,
    _content_length,
    _first_string,
)
from .checks import (
    _artifact_segment,
    _check_file_refs,
    _check_int,
    _check_optional_string,
    _check_string_list,
    _check_text,
    _check_webhook_events,
    _check_webhook_url,
    _plan_artifact_paths,
    _refuse_existing,
    check_id,
    check_prompt,
    check_task_id,
    check_upload_path,
    normalize_github_repo,
    safe_artifact_path,
)
from .config import _check_positive, _redact_key, _without_query
from .constants import (
    _REDIRECT_STATUSES,
    DEFAULT_COMPUTER_WAIT_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    MAX_COMPUTER_ICON_CHARS,
    MAX_COMPUTER_NAME_CHARS,
    MAX_DOWNLOAD_REDIRECTS,
    MAX_EVENT_BYTES,
    MAX_PAGE_SIZE,
    MAX_WEBHOOK_TEXT_CHARS,
    MULTIPART_PART_OVERHEAD,
    POLLED_EVENTS_FIRST_DELAY,
    POLLED_EVENTS_MAX_DELAY,
    PUBLIC_KEY_FIELDS,
    RESULT_SETTLE_FIRST_DELAY,
    SMALL_ARTIFACT_BYTES,
    UPLOAD_CHUNK_BYTES,
    UPLOAD_URL_FIELDS,
    VISIBILITIES,
)
from .errors import (
    APIConnectionError,
    ArtifactsRefusedError,
    InputError,
    MalformedResponseError,
    NotFoundError,
    OutcomeUnknownError,
    ProvisionError,
    RateLimitError,
    RebyteError,
    ServerError,
    UploadError,
    WaitTimeoutError,
    WorkspaceUnknownError,
)
from .failures import _scrub_error
from .netio import _as_context, _local_write, _ProgressReader
from .streaming import _event_identity, _event_too_large, _parse_event_data, _sse_lines
from .taskstate import (
    _answer_in_view,
    _done_from_task,
    _ended_word,
    _is_done,
    _matching_entry,
    _progress_state,
    _prompt_ids,
    _prompt_status,
)
from .transport import _Transport

logger = logging.getLogger("rebyte")


class _DoneListener:
    """What a wait does between polls with `use_events`: listen on the event stream until
    it says the prompt ended. A failure costs nothing (the wait polls either way); a
    server with no stream for the task (404) is not asked again by this wait."""

    def __init__(self, client: RebyteClient, task_id: str, prompt_id: Optional[str]) -> None:
        self._client, self._task_id, self._prompt_id = client, task_id, prompt_id
        self._usable = True

    def listen(self, deadline: float) -> None:
        remaining = deadline - self._client._clock()
        if remaining <= 0 or not self._usable:
            return
        events = self._client.iter_events(
            self._task_id, prompt_id=self._prompt_id, timeout=remaining, polling_fallback=False
        )
        try:
            for event in events:
                if event.get("eventType") == "done":
                    return
        except NotFoundError:
            self._usable = False
            logger.debug("wait %s: the task has no event stream; polling", self._task_id)
        except RebyteError as error:  # WaitTimeoutError included: the final poll decides
            logger.debug(
                "wait %s: no help from the event stream (%s); polling", self._task_id, error
            )


class RebyteClient(_Transport):
    """A client for the Rebyte v1 API.

    Configuration comes from the arguments, then the environment
    (`REBYTE_API_KEY`, `REBYTE_BASE_URL`, `REBYTE_CONNECT_TIMEOUT`,
    `REBYTE_READ_TIMEOUT`, `REBYTE_CREATE_TIMEOUT`, `REBYTE_MAX_RETRIES`).

    One client may be shared across threads: it keeps one `requests.Session`
    whose connection pool (`pool_size` connections per host) is safe for
    concurrent requests, and it holds no other mutable state.
    """

    def describe_request(self, method: str, path: str, body: Optional[dict] = None) -> dict:
        """What a call would send, with the key redacted: for dry runs and logs."""
        headers = {"API_KEY": _redact_key(self._api_key), "User-Agent": self.user_agent}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return {"method": method, "url": self.base_url + path, "headers": headers, "json": body}

    # -------------------------------------------------------------- tasks

    def create_task(
        self,
        prompt: str,
        *,
        executor: Optional[str] = None,
        model: Optional[str] = None,
        skills: Optional[Iterable[str]] = None,
        files: Optional[Iterable[dict]] = None,
        github_url: Optional[str] = None,
        branch_name: Optional[str] = None,
        workspace_id: Optional[str] = None,
    ) -> dict:
        """Create a task; blocks while its VM is provisioned, then returns `{"id", "url", ...}`.

        Retried only where the server certainly did nothing (429, no connection):
        any other failure after sending raises OutcomeUnknownError.
        """
        body = self.task_body(
            prompt,
            executor=executor,
            model=model,
            skills=skills,
            files=files,
            github_url=github_url,
            branch_name=branch_name,
            workspace_id=workspace_id,
        )
        return self._send_once_only(
            "POST",
            "/tasks",
            body,
            fields=("id",),
            what="create task",
            operation="create_task",
            hint=(
                "the task may have been created: check with list_tasks(limit=5) "
                "before creating it again"
            ),
            read_timeout=self.create_timeout,
        )

    @staticmethod
    def task_body(
        prompt: str,
        *,
        executor: Optional[str] = None,
        model: Optional[str] = None,
        skills: Optional[Iterable[str]] = None,
        files: Optional[Iterable[dict]] = None,
        github_url: Optional[str] = None,
        branch_name: Optional[str] = None,
        workspace_id: Optional[str] = None,
    ) -> dict:
        """The validated JSON body of POST /v1/tasks: only the fields the caller gave."""
        body: Dict[str, Any] = {"prompt": check_prompt(prompt)}
        if executor is not None:
            body["executor"] = _check_optional_string(executor, "executor")
        if model is not None:
            body["model"] = _check_optional_string(model, "model")
        if skills is not None:
            body["skills"] = _check_string_list(skills, "skills")
        if files is not None:
            body["files"] = _check_file_refs(files)
        if github_url is not None:
            body["githubUrl"] = normalize_github_repo(github_url)
        if branch_name is not None:
            body["branchName"] = _check_optional_string(branch_name, "branch name")
        if workspace_id is not None:
            body["workspaceId"] = _check_optional_string(workspace_id, "workspace id")
        return body

    def get_task(self, task_id: str) -> dict:
        """The task with its derived `status` and its `prompts`."""
        return self._get_task(task_id)

    def _get_task(self, task_id: str, deadline: Optional[float] = None) -> dict:
        path = self._path("/tasks/{task_id}", task_id=task_id)
        task = self._fetch(
            path, resource="task", fields=("id",), what="get task", deadline=deadline
        )
        return _check_task_shape(task)

    def list_tasks(self, limit: int = 50, offset: int = 0) -> dict:
        """One page, newest first: `{"data", "total", "limit", "offset"}`."""
        params = {
            "limit": _check_int(limit, "limit", 1, MAX_PAGE_SIZE),
            "offset": _check_int(offset, "offset", 0),
        }
        page = self._request("GET", "/tasks", params=params)
        page = self._expect_fields(page, ("data",), "list tasks")
        if not isinstance(page["data"], list):
            raise MalformedResponseError("list tasks: `data` is not a list", status=200)
        return page

    def iter_tasks(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Every task, newest first, page by page; a task already yielded is not repeated."""
        return self._iter_pages(
            lambda limit, offset: self.list_tasks(limit=limit, offset=offset), page_size
        )

    def follow_up(
        self,
        task_id: str,
        prompt: str,
        skills: Optional[Iterable[str]] = None,
        files: Optional[Iterable[dict]] = None,
    ) -> dict:
        """Send another prompt to a task (its VM is resumed if stopped); returns `{"promptId"}`."""
        path = self._path("/tasks/{task_id}/prompts", task_id=task_id)
        body: Dict[str, Any] = {"prompt": check_prompt(prompt)}
        if skills is not None:
            body["skills"] = _check_string_list(skills, "skills")
        if files is not None:
            body["files"] = _check_file_refs(files)
        # Like a create, a follow-up may first resume a stopped VM: it gets the long timeout.
        return self._send_once_only(
            "POST",
            path,
            body,
            fields=("promptId",),
            what="follow up",
            operation="follow_up",
            hint=(
                f"the follow-up may have been sent: check with get_task({task_id!r}) "
                "before sending it again"
            ),
            resource="task",
            resource_id=task_id,
            read_timeout=self.create_timeout,
        )

    def set_visibility(self, task_id: str, visibility: str = "public") -> dict:
        """Set who can see a task; `shareUrl` comes back when it is public."""
        if visibility not in VISIBILITIES:
            raise InputError(
                f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}"
            )
        path = self._path("/tasks/{task_id}/visibility", task_id=task_id)
        answer = self._request("PATCH", path, resource="task", json_body={"visibility": visibility})
        return self._expect_fields(answer, ("visibility",), "set visibility")

    def delete_task(self, task_id: str) -> None:
        """Soft-delete a task. A retry that finds it already gone counts as success."""
        path = self._path("/tasks/{task_id}", task_id=task_id)
        self._request("DELETE", path, resource="task", expect_json=False, gone_is_done=True)

    def cancel_task(self, task_id: str) -> dict:
        """Stop the running prompt; the task still takes follow-ups afterwards."""
        path = self._path("/tasks/{task_id}/cancel", task_id=task_id)
        try:
            answer = self._request("POST", path, resource="task", idempotent=True)
        except MalformedResponseError:  # a 2xx without JSON (204, say): canceled all the same
            return {}
        return answer if isinstance(answer, dict) else {}

    def get_task_content(self, task_id: str, *, include_events: bool = False) -> dict:
        """The prompts with `userPrompt` and the agent's `response`."""
        params = {"include": "events"} if include_events else None
        path = self._path("/tasks/{task_id}/content", task_id=task_id)
        content = self._request("GET", path, resource="task", params=params)
        return self._expect_fields(content, ("prompts",), "get task content")

    def get_result(
        self,
        task_id: str,
        prompt_id: Optional[str] = None,
        *,
        settle: Optional[float] = None,
    ) -> Optional[str]:
        """The agent's answer to a prompt (the latest by default); None when the API has none.

        The service can turn a task terminal a moment before its `finalResult` is
        filled in, and can leave it `""`: a succeeded prompt without an answer is
        read again for up to `settle` seconds, then its /content `response` is asked
        (matched by prompt id, else by position). `""` comes back only when /content
        says the agent answered with nothing; None means no answer came back through
        the API at all (it may still be on the task's page). `settle` defaults to the
        client's `result_settle` (3 s, or REBYTE_RESULT_SETTLE).
        """
        check_task_id(task_id)
        settle = self.result_settle if settle is None else settle
        deadline = self._clock() + max(0.0, settle)
        task = self._get_task(task_id)
        delay = RESULT_SETTLE_FIRST_DELAY
        while True:
            answer, latest = _answer_in_view(task, prompt_id)
            if answer or not latest or _prompt_status(task, prompt_id) != "succeeded":
                break
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
            task = self._get_task(task_id)
        if answer:
            return answer
        return self._content_answer(task_id, task, prompt_id)

    def _content_answer(self, task_id: str, task: dict, prompt_id: Optional[str]) -> Optional[str]:
        try:
            content = self.get_task_content(task_id)
        except (NotFoundError, MalformedResponseError):
            return None
        entries = [p for p in content.get("prompts") or [] if isinstance(p, dict)]
        entry = _matching_entry(entries, _prompt_ids(task), prompt_id)
        response = (entry or {}).get("response")
        return response if isinstance(response, str) else None

    # -------------------------------------------------------------- task waits

    def wait_for_task(
        self,
        task_id: str,
        *,
        prompt_id: Optional[str] = None,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = 2.0,
        max_poll_interval: float = 10.0,
        backoff: float = 1.5,
        on_status: Optional[Callable[[dict], None]] = None,
        use_events: bool = False,
    ) -> dict:
        """Poll until the task (or, with `prompt_id`, that prompt) is terminal; return the task.

        Right after a follow-up the task may still read `completed` from the
        previous prompt, so waiting on a follow-up means passing its `prompt_id`.
        Transient failures are ridden out until the deadline; on timeout a
        WaitTimeoutError carries the last task seen.

        With `use_events`, the wait listens on the task's event stream after the
        first poll: one long request instead of a poll every few seconds, and the
        end is seen at once. Where the stream fails, polling takes over.
        """
        check_task_id(task_id)

        def timed_out(last: Optional[dict], last_error: Optional[BaseException]) -> BaseException:
            what = f"prompt {prompt_id} of task {task_id}" if prompt_id else f"task {task_id}"
            status = (last or {}).get("status", "unknown")
            return WaitTimeoutError(
                f"timed out after {timeout:g}s waiting for {what} (last status: {status})",
                task_id=task_id,
                prompt_id=prompt_id,
                last_task=last,
                last_error=last_error,
            )

        stream = _DoneListener(self, task_id, prompt_id) if use_events else None
        return self._poll_until(
            lambda deadline: self._get_task(task_id, deadline),
            lambda task: _is_done(task, prompt_id),
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            backoff=backoff,
            on_timeout=timed_out,
            state_of=_progress_state,
            on_status=on_status,
            on_pending=((lambda deadline: stream.listen(deadline)) if stream is not None else None),
            label=task_id,
        )

    # -------------------------------------------------------------- task events

    def iter_events(
        self,
        task_id: str,
        *,
        prompt_id: Optional[str] = None,
        timeout: Optional[float] = None,
        reconnect_delay: float = 1.0,
        max_reconnects: int = 50,
        polling_fallback: bool = True,
    ) -> Iterator[dict]:
        """Yield the agent's events for the latest prompt (or `prompt_id`) as they come.

        Each event is the server's data object (`seq`, `eventType`, `payload`, ...).
        The last item has `eventType: "done"` with `status`, `lastSeq` and `finalResult`.
        Each connection replays from the start, so events are de-duplicated on
        `eventKey` (else prompt and seq); a dropped stream is resumed; an early
        empty `done` (lastSeq -1) means "not started yet", not the end. Every read
        has the client's read timeout, and reconnects without progress are bounded.
        With `timeout`, a WaitTimeoutError ends the stream once that many seconds pass.

        Where the server has no event stream for a task it still shows (404), the
        task is polled instead (unless `polling_fallback` is False): one item
        `{"eventType": "polling"}` says so, then one `{"eventType": "status"}` per
        change, then the `done` item as above.
        """
        path = self._path("/tasks/{task_id}/events", task_id=task_id)
        deadline = None
        if timeout is not None:
            deadline = self._clock() + _check_positive(timeout, "watch timeout", InputError)

        def check_deadline() -> None:
            if deadline is not None and self._clock() >= deadline:
                raise WaitTimeoutError(
                    f"timed out after {timeout:g}s watching task {task_id}",
                    task_id=task_id,
                    prompt_id=prompt_id,
                )

        seen = set()
        failures = 0
        reconnects = 0
        last_contact = self._clock()
        while True:
            progressed = False
            try:
                for kind, data in self._stream_sse(path, deadline):
                    check_deadline()
                    if kind == "open":
                        last_contact = self._clock()
                    elif kind == "event":
                        if prompt_id is not None and data.get("promptId") not in (None, prompt_id):
                            continue
                        key = _event_identity(data)
                        if key in seen:
                            continue
                        seen.add(key)
                        progressed = True
                        failures = 0
                        yield data
                    elif kind == "done":
                        final = self._final_done(task_id, prompt_id, data, bool(seen))
                        if final is not None:
                            yield final
                            return
                        break
            except NotFoundError:
                if seen or not polling_fallback:
                    raise
                self._get_task(task_id, deadline)  # a task that is gone stays a NotFoundError
                yield from self._polled_events(task_id, prompt_id, deadline, check_deadline)
                return
            except (
                APIConnectionError,
                ServerError,
                RateLimitError,
                MalformedResponseError,
            ) as error:
                check_deadline()
                failures += 1
                out_of_time = (
                    self.total_timeout is not None
                    and self._clock() - last_contact >= self.total_timeout
                )
                if failures > self.max_retries or out_of_time:
                    raise
                logger.debug("events %s: stream failed, reconnecting: %s", task_id, error)
            reconnects = 0 if progressed else reconnects + 1
            if reconnects > max_reconnects:
                raise APIConnectionError(
                    f"the event stream of task {task_id} ended {max_reconnects} times without news"
                )
            check_deadline()
            self._sleep(reconnect_delay if not progressed else 0)

    def _polled_events(
        self,
        task_id: str,
        prompt_id: Optional[str],
        deadline: Optional[float],
        check_deadline: Callable[[], None],
    ) -> Iterator[dict]:
        """The events of a task without an event stream: its status changes, then done."""
        yield {"eventType": "polling", "reason": "the task has no event stream: polling it"}
        delay, last_state = POLLED_EVENTS_FIRST_DELAY, None
        while True:
            check_deadline()
            task = self._get_task(task_id, deadline)
            state = _progress_state(task)
            if _is_done(task, prompt_id):
                yield _done_from_task(task, prompt_id, {"lastSeq": -1})
                return
            if state != last_state:
                last_state = state
                yield {
                    "eventType": "status",
                    "status": task.get("status"),
                    "promptId": prompt_id,
                    "prompts": [p.get("status") for p in task.get("prompts") or []],
                }
            if deadline is not None:
                delay = min(delay, max(deadline - self._clock(), 0.0))
            self._sleep(delay)
            delay = min(delay * 1.5, POLLED_EVENTS_MAX_DELAY)

    def _final_done(
        self, task_id: str, prompt_id: Optional[str], done: dict, saw_events: bool
    ) -> Optional[dict]:
        """The `done` item that ends the stream, or None to reconnect.

        A `done` after our events is trusted. Otherwise (the early race, a prompt
        that ended with no events, or the stream of another prompt) the task says
        whether the prompt has ended. A read that still lags behind a `done` whose
        status is terminal (in either vocabulary) and that counted events is
        overruled once the stream is known to be our prompt's: the done is the news,
        the read only catches up. An empty done (`lastSeq: -1`) ends the stream only
        once the task says so: until then it may be the early race.
        """
        if saw_events and done.get("lastSeq") != -1:
            return {"eventType": "done", **done}
        task = self.get_task(task_id)
        prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
        latest = prompts[-1] if prompts else {}
        ours = prompt_id is None or latest.get("id") == prompt_id
        if not _is_done(task, prompt_id):
            counted = isinstance(done.get("lastSeq"), int) and done["lastSeq"] >= 0
            if ours and prompts and counted and _ended_word(done.get("status")):
                return {"eventType": "done", **done, "promptId": latest.get("id")}
            return None
        return _done_from_task(task, prompt_id, done)

    def _stream_sse(
        self, path: str, deadline: Optional[float] = None
    ) -> Iterator[Tuple[str, dict]]:
        """Yield ("open", {}) once connected, then (event name, data) per server-sent event,
        and ("tick", {}) per comment line, so a caller can keep time on a quiet stream."""
        url = self.base_url + path
        response, _ = self._send(
            "GET",
            url,
            headers={"Accept": "text/event-stream"},
            stream=True,
            deadline=deadline,
        )
        with response:
            self._raise_for_status("GET", url, response, "task")
            yield "open", {}
            event_name, data_lines, size = "message", [], 0
            for line in _sse_lines(self._iter_stream("GET", url, response, deadline)):
                if line is None or line.startswith(":"):
                    yield "tick", {}
                elif not line:
                    if data_lines:
                        yield event_name, _parse_event_data("\n".join(data_lines))
                    event_name, data_lines, size = "message", [], 0
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event_name = value
                    elif field == "data":
                        size += len(value) + 1
                        if size > MAX_EVENT_BYTES:
                            raise _event_too_large()
                        data_lines.append(value)

    # -------------------------------------------------------------- files (task inputs)

    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        content_type: Optional[str] = None,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> dict:
        """Upload a file for a task; returns `{"id", "filename"}` for `create_task(files=...)`.

        The bytes are streamed from disk with their Content-Length (constant memory),
        straight to the storage host, which never sees the API key. `progress` is
        called with (bytes sent, total bytes).
        """
        path, name, size = check_upload_path(path)
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        slot = self._request(
            "POST", "/files", json_body={"filename": name, "contentType": content_type}
        )
        slot = self._expect_fields(slot, ("id", "filename", "uploadUrl"), "create upload slot")
        self._put_file(slot["uploadUrl"], path, size, content_type, progress)
        return {"id": slot["id"], "filename": slot["filename"]}

    def _put_file(
        self,
        url: str,
        path: str,
        size: int,
        content_type: str,
        progress: Optional[Callable[[int, int], None]],
    ) -> None:
        """PUT the file to a signed storage URL, without the API key."""
        shown_url = _without_query(url)

        @contextlib.contextmanager
        def file_body() -> Iterator[Any]:
            # A fresh handle per attempt: a retried PUT starts the file from its first byte.
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as error:
                raise InputError(
                    f"cannot read {path} any more ({error.strerror or error}): "
                    "it was moved or deleted after it was checked"
                ) from None
            with handle:
                yield _ProgressReader(handle, size, progress) if size else b""

        # No deadline: a large file may take longer than an API call is allowed to; the
        # send path still ends a transfer that stalls, or an answer that does not come.
        response, _ = self._send(
            "PUT",
            url,
            with_key=False,
            body=file_body,
            headers={"Content-Type": content_type, "Content-Length": str(size)},
            watchdog=False,
        )
        if not 200 <= response.status_code < 300:  # a redirect stored nothing either
            error = self._error_from_response("PUT", shown_url, response)
            reason = (
                "the upload URL expired or its signature was refused"
                if response.status_code == 403
                else error.message
            )
            raise UploadError(
                f"the storage host refused the upload: {reason}",
                status=response.status_code,
                code=error.code,
                request_id=error.request_id,
                method="PUT",
                url=shown_url,
            )

    # -------------------------------------------------------------- artifacts

    def resolve_workspace_id(
        self, task_or_workspace_id: str, *, known: Optional[str] = None
    ) -> str:
        """The workspace a task ran in, or the id itself when no task has it (a workspace id).

        The documents show a task's `workspaceId` only in its create answer, so a
        caller that kept it passes it as `known`; the task view is asked only when a
        server happens to carry it there, and otherwise WorkspaceUnknownError says so.
        """
        task_id = check_id(task_or_workspace_id, "task or workspace id")
        if known is not None:
            return check_id(known, "workspace id")
        try:
            task = self._get_task(task_id)
        except NotFoundError:
            return task_id
        workspace_id = task.get("workspaceId")
        if not isinstance(workspace_id, str) or not workspace_id.strip():
            raise WorkspaceUnknownError(task_id)
        return check_id(workspace_id, "workspace id")

    def _artifacts_path(self, workspace_id: str, name: Optional[str] = None) -> str:
        path = self._path("/workspaces/{workspace_id}/artifacts", workspace_id=workspace_id)
        return path if name is None else f"{path}/{_artifact_segment(name)}"

    def list_artifacts(
        self, workspace_or_task_id: str, *, workspace_id: Optional[str] = None
    ) -> List[dict]:
        """The files a workspace holds (a task id stands for its workspace; pass the
        task's `workspace_id` when it is known: see resolve_workspace_id).

        Each entry keeps the server's fields and has `name` (str) and `size`
        (int, or None when the server gave none or an unusable one).
        """
        workspace_id = self.resolve_workspace_id(workspace_or_task_id, known=workspace_id)
        return self._list_artifacts(workspace_id)

    def _list_artifacts(self, workspace_id: str) -> List[dict]:
        answer = self._request("GET", self._artifacts_path(workspace_id), resource="workspace")
        items = _artifact_items(answer)
        if items is None:
            raise MalformedResponseError(
                "list artifacts: the answer is neither a list nor {data: [...]} "
                f"(got {type(answer).__name__})",
                status=200,
            )
        entries = []
        for item in items:
            name = _artifact_entry_name(item)
            if name is None:
                logger.warning("list artifacts: an entry without a file name was left out")
                continue
            entries.append({**item, "name": name, "size": _artifact_size(item.get("size"))})
        return entries

    def download_artifact(
        self,
        workspace_id: str,
        name: str,
        dest_dir: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: Optional[Callable[[str, int, Optional[int]], None]] = None,
    ) -> dict:
        """Download one artifact into `dest_dir`; returns `{"name", "path", "bytes"}`.

        The name is untrusted (see safe_artifact_path); nested names keep their
        folders. An existing file is refused unless `overwrite`, before anything
        is sent. The bytes stream in constant memory into a temporary file beside
        the target, renamed into place only once complete: an interrupted
        download never leaves a file under the final name. A redirect to a
        storage host is followed without the API key. `progress(name, bytes so
        far, total or None)` is called as bytes arrive.
        """
        workspace_id = check_id(workspace_id, "workspace id")
        path = safe_artifact_path(dest_dir, name)
        _refuse_existing(path, overwrite)
        return self._download(workspace_id, name, dest_dir, path, overwrite, progress)

    def download_artifacts(
        self,
        workspace_or_task_id: str,
        names: Optional[Iterable[str]] = None,
        dest_dir: str | os.PathLike[str] = ".",
        *,
        overwrite: bool = False,
        progress: Optional[Callable[[str, int, Optional[int]], None]] = None,
        workspace_id: Optional[str] = None,
    ) -> List[dict]:
        """Download several artifacts (every one when `names` is None) into `dest_dir`;
        `workspace_id` as list_artifacts takes it.

        Every name is checked before the first byte is fetched: an unsafe name, two
        names that would land on the same local file, or an existing file (without
        `overwrite`) raises ArtifactsRefusedError naming each, and nothing is
        downloaded. To fetch the others anyway, call again with
        `names` minus `error.refused`.
        """
        workspace_id = self.resolve_workspace_id(workspace_or_task_id, known=workspace_id)
        if names is None:
            names = [entry["name"] for entry in self._list_artifacts(workspace_id)]
        else:
            names = _check_string_list(names, "artifact names")
        planned, refused = _plan_artifact_paths(dest_dir, names)
        existing = [name for name, path in planned if not overwrite and os.path.lexists(path)]
        refused += [(name, f"{path} exists already") for name, path in planned if name in existing]
        if refused:
            raise ArtifactsRefusedError(refused, existing)
        return [
            self._download(workspace_id, name, dest_dir, path, overwrite, progress)
            for name, path in planned
        ]

    def _download(
        self,
        workspace_id: str,
        name: str,
        dest_dir: Any,
        path: str,
        overwrite: bool,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> dict:
        url = self.base_url + self._artifacts_path(workspace_id, name)
        folder = os.path.dirname(path) or "."
        temp = os.path.join(folder, f".rebyte-{os.urandom(8).hex()}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with _local_write(path):
            os.makedirs(folder, exist_ok=True)
            safe_artifact_path(dest_dir, name)  # again: the folders now exist, none may lead out
            # O_EXCL: never write through a file or link already there; 0o666: the umask rules.
            fd = os.open(temp, flags, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                attempt = 0
                while True:
                    handle.seek(0)
                    handle.truncate()  # a retry starts again from byte 0
                    try:
                        written = self._fetch_artifact(url, name, handle, progress)
                        break
                    except APIConnectionError as error:
                        if attempt >= self.max_retries:
                            raise
                        logger.debug("download %s: %s; starting again", name, error)
                        self._sleep(self._backoff(attempt))
                        attempt += 1
            if not overwrite and os.path.lexists(path):
                raise InputError(f"{path} appeared during the download; not overwritten")
            with _local_write(path):
                os.replace(temp, path)
        except BaseException:  # Ctrl-C too: nothing half-written stays behind
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return {"name": name, "path": path, "bytes": written}

    def _fetch_artifact(
        self,
        url: str,
        name: str,
        handle: Any,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> int:
        """GET the artifact into `handle` (following a storage redirect without the key)."""
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        response, _ = self._send("GET", url, stream=True, headers=headers, watchdog=False)
        current, hops = url, 0
        while response.status_code in _REDIRECT_STATUSES and hops < MAX_DOWNLOAD_REDIRECTS:
            target = self._redirect_target("GET", current, response)
            response.close()
            current, hops = target, hops + 1
            response, _ = self._send(
                "GET", target, with_key=False, stream=True, headers=headers, watchdog=False
            )
        with response:
            if hops == 0:
                self._raise_for_status("GET", url, response, "artifact")
            elif not 200 <= response.status_code < 300:
                if 300 <= response.status_code < 400:
                    self._raise_for_status("GET", current, response, "artifact")
                error = self._error_from_response("GET", current, response, "artifact")
                raise type(error)(
                    f"the storage host refused the download: {error.message}",
                    status=error.status,
                    code=error.code,
                    request_id=error.request_id,
                    method="GET",
                    url=_without_query(current),
                    resource="artifact",
                )
            expected = _content_length(response)
            written = 0
            for chunk in self._iter_body("GET", current, response, UPLOAD_CHUNK_BYTES):
                with _local_write(name):
                    handle.write(chunk)
                written += len(chunk)
                if expected is not None and written > expected:
                    break
                if progress is not None:
                    progress(name, written, expected)
            if expected is not None and written != expected:
                raise APIConnectionError(
                    f"GET {_without_query(current)}: the download of {name!r} was cut off "
                    f"({written} of {expected} bytes)"
                    if written < expected
                    else f"GET {_without_query(current)}: more bytes than the "
                    f"{expected} announced for {name!r}"
                )
        return written

    def upload_artifacts(
        self,
        workspace_id: str,
        paths: Iterable[str | os.PathLike[str]],
        *,
        progress: Optional[Callable[[str, int, Optional[int]], None]] = None,
    ) -> List[dict]:
        """Upload local files into a workspace (named by their base names); returns entries.

        Small files go in multipart POSTs of at most SMALL_ARTIFACT_BYTES; larger
        ones through a signed upload URL (streamed PUT with Content-Length, no key).
        A POST is sent once only: a failure after the server may have stored the
        files raises OutcomeUnknownError (operation "upload_artifacts").
        """
        workspace_id = check_id(workspace_id, "workspace id")
        if isinstance(paths, (str, os.PathLike)):
            raise InputError("paths must be a list of file paths")
        files = [check_upload_path(path) for path in paths]
        if not files:
            raise InputError("no files to upload")
        seen: Dict[str, str] = {}
        for path, name, _ in files:
            if name in seen:
                raise InputError(f"{seen[name]} and {path} would both be artifact {name!r}")
            seen[name] = path
        results: List[dict] = []
        batch: List[Tuple[str, str, int]] = []
        budget = 0
        for path, name, size in files:
            cost = size + MULTIPART_PART_OVERHEAD
            if cost > SMALL_ARTIFACT_BYTES:
                results += self._upload_large_artifact(workspace_id, path, name, size, progress)
                continue
            if budget + cost > SMALL_ARTIFACT_BYTES:
                results += self._post_artifacts(workspace_id, batch, progress)
                batch, budget = [], 0
            batch.append((path, name, size))
            budget += cost
        if batch:
            results += self._post_artifacts(workspace_id, batch, progress)
        return results

    def _post_artifacts(
        self,
        workspace_id: str,
        batch: List[Tuple[str, str, int]],
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> List[dict]:
        """One multipart/form-data POST of small files (held in memory: at most 8 MiB)."""
        from urllib3.filepost import encode_multipart_formdata  # noqa: PLC0415 - with requests

        fields = []
        for path, name, _ in batch:
            with open(path, "rb") as handle:
                data = handle.read()
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            fields.append(("file", (name, data, content_type)))
        data, content_type = encode_multipart_formdata(fields)
        url = self.base_url + self._artifacts_path(workspace_id)
        hint = (
            f"the files may have been uploaded: check with list_artifacts({workspace_id!r}) "
            "before uploading them again"
        )
        try:
            response, _ = self._send(
                "POST",
                url,
                body=lambda: _as_context(data),
                headers={"Content-Type": content_type},
                idempotent=False,
                read_timeout=self.create_timeout,
            )
            self._raise_for_status("POST", url, response, "workspace")
            try:
                items = _artifact_items(self._parse_body("POST", url, response)) or []
            except MalformedResponseError:  # a 2xx: the files are there whatever it says
                logger.warning("upload artifacts: the answer was not JSON; the upload succeeded")
                items = []
        except (APIConnectionError, ServerError, MalformedResponseError) as error:
            if isinstance(error, APIConnectionError) and not error.maybe_sent:
                raise
            raise OutcomeUnknownError(
                str(error),
                hint=hint,
                cause=error,
                operation="upload_artifacts",
                resource_id=workspace_id,
            ) from error
        if progress is not None:
            for _, name, size in batch:
                progress(name, size, size)
        by_name = {_artifact_entry_name(item): item for item in items if isinstance(item, dict)}
        return [
            {
                **(by_name.get(name) or {}),
                "name": name,
                "size": _artifact_size((by_name.get(name) or {}).get("size", size)),
            }
            for _, name, size in batch
        ]

    def _upload_large_artifact(
        self,
        workspace_id: str,
        path: str,
        name: str,
        size: int,
        progress: Optional[Callable[[str, int, Optional[int]], None]],
    ) -> List[dict]:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        slot = self._request(
            "POST",
            self._artifacts_path(workspace_id) + "/upload-url",
            resource="workspace",
            json_body={"filename": name, "contentType": content_type},
        )
        upload_url = _first_string(slot, UPLOAD_URL_FIELDS)
        if upload_url is None:
            raise MalformedResponseError(
                "artifact upload URL: the answer names no URL "
                f"(looked for {', '.join(UPLOAD_URL_FIELDS)})",
                status=None,
            )
        per_file = (lambda sent, total: progress(name, sent, total)) if progress else None
        self._put_file(upload_url, path, size, content_type, per_file)
        return [{"name": name, "filename": name, "size": size, "contentType": content_type}]

    def delete_artifact(self, workspace_id: str, name: str) -> None:
        """Delete one artifact. A retry that finds it already gone counts as success."""
        workspace_id = check_id(workspace_id, "workspace id")
        path = self._artifacts_path(workspace_id, name)
        self._request("DELETE", path, resource="artifact", expect_json=False, gone_is_done=True)

    def delete_all_artifacts(self, workspace_id: str) -> None:
        """Delete every artifact of a workspace."""
        workspace_id = check_id(workspace_id, "workspace id")
        path = self._artifacts_path(workspace_id)
        self._request("DELETE", path, resource="workspace", expect_json=False)

    # -------------------------------------------------------------- computers

    def create_computer(self, name: Optional[str] = None, icon: Optional[str] = None) -> dict:
        """Create an Agent Computer: a VM that provisions in the background.

        Returns at once with `status: "provisioning"`; `wait_for_computer` waits
        for `ready`. Its `id` is a workspace id: `create_task(..., workspace_id=id)`
        runs tasks in it without provisioning. Retried only where the server
        certainly did nothing (429, no connection): any other failure after
        sending raises OutcomeUnknownError.
        """
        body: Dict[str, Any] = {}
        if name is not None:
            body["name"] = _check_text(name, "computer name", MAX_COMPUTER_NAME_CHARS)
        if icon is not None:
            body["icon"] = _check_text(icon, "computer icon", MAX_COMPUTER_ICON_CHARS)
        return self._send_once_only(
            "POST",
            "/agent-computers",
            body,
            fields=("id",),
            what="create computer",
            operation="create_computer",
            hint=(
                "the computer may have been created: check with list_computers(limit=5) "
                "before creating it again"
            ),
        )

    def get_computer(self, computer_id: str) -> dict:
        """The computer with its `status` (provisioning, ready or error)."""
        return self._get_computer(computer_id)

    def _get_computer(self, computer_id: str, deadline: Optional[float] = None) -> dict:
        path = self._path("/agent-computers/{computer_id}", computer_id=computer_id)
        return self._fetch(
            path, resource="computer", fields=("id",), what="get computer", deadline=deadline
        )

    def list_computers(self, limit: int = 50, offset: int = 0) -> dict:
        """One page, newest first: `{"data", "total", "limit", "offset"}`."""
        return self._list_page("/agent-computers", limit, offset, "list computers")

    def iter_computers(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Every computer, newest first, page by page; one already yielded is not repeated."""
        return self._iter_pages(
            lambda limit, offset: self.list_computers(limit=limit, offset=offset), page_size
        )

    def wait_for_computer(
        self,
        computer_id: str,
        *,
        timeout: float = DEFAULT_COMPUTER_WAIT_TIMEOUT,
        poll_interval: float = 2.0,
        max_poll_interval: float = 10.0,
        on_status: Optional[Callable[[dict], None]] = None,
    ) -> dict:
        """Poll with backoff until the computer is `ready`; return it.

        `error` raises ProvisionError with the server's `provisionError`; running
        out of time raises WaitTimeoutError (resource "computer"), the computer
        still provisioning. `on_status` hears each change of status.
        """
        check_id(computer_id, "computer id")

        def timed_out(last: Optional[dict], last_error: Optional[BaseException]) -> BaseException:
            status = (last or {}).get("status", "unknown")
            return WaitTimeoutError(
                f"timed out after {timeout:g}s waiting for computer {computer_id} "
                f"(last status: {status})",
                last_error=last_error,
                resource="computer",
                resource_id=computer_id,
            )

        computer = self._poll_until(
            lambda deadline: self._get_computer(computer_id, deadline),
            lambda obj: obj.get("status") in ("ready", "error"),
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            backoff=1.5,
            on_timeout=timed_out,
            state_of=lambda obj: obj.get("status"),
            on_status=on_status,
            label=computer_id,
        )
        if computer.get("status") == "error":
            reason = computer.get("provisionError")
            reason = reason if isinstance(reason, str) and reason.strip() else None
            raise ProvisionError(
                f"computer {computer_id} failed to provision: "
                f"{(reason or 'no reason given').rstrip('. ')}",
                computer=computer,
                provision_error=reason,
            )
        return computer

    def delete_computer(self, computer_id: str) -> None:
        """Delete a computer and its VM. A retry that finds it already gone counts as success."""
        path = self._path("/agent-computers/{computer_id}", computer_id=computer_id)
        self._request("DELETE", path, resource="computer", expect_json=False, gone_is_done=True)

    def _list_page(self, path: str, limit: int, offset: int, what: str) -> dict:
        params = {
            "limit": _check_int(limit, "limit", 1, MAX_PAGE_SIZE),
            "offset": _check_int(offset, "offset", 0),
        }
        page = self._expect_fields(self._request("GET", path, params=params), ("data",), what)
        if not isinstance(page["data"], list):
            raise MalformedResponseError(f"{what}: `data` is not a list", status=200)
        return page

    # -------------------------------------------------------------- webhooks

    def add_webhook(
        self,
        url: str,
        events: Iterable[str],
        *,
        description: Optional[str] = None,
        secret: Optional[str] = None,
        allow_duplicate: bool = False,
    ) -> dict:
        """Register an https URL for task events (see WEBHOOK_EVENTS); returns the webhook.

        Everything is checked here before sending. `secret` is sent once and never
        shown again: no error, log line or repr carries it (the API never returns
        it either; `hasSecret` says one is set). An organization has at most 3.
        Retried only where the server certainly did nothing, like a create.
        The service may register one URL twice, so the webhooks are listed first
        and one with this URL is returned as it is, marked `alreadyRegistered`,
        unless `allow_duplicate`.
        """
        body: Dict[str, Any] = {
            "url": _check_webhook_url(url),
            "events": _check_webhook_events(events),
        }
        if description is not None:
            body["description"] = _check_text(description, "description", MAX_WEBHOOK_TEXT_CHARS)
        if secret is not None:
            body["secret"] = _check_text(secret, "webhook secret", MAX_WEBHOOK_TEXT_CHARS)
        if not allow_duplicate:
            for hook in self.list_webhooks():
                if isinstance(hook, dict) and hook.get("url") == body["url"]:
                    return {**hook, "alreadyRegistered": True}
        try:
            return self._send_once_only(
                "POST",
                "/webhooks",
                body,
                fields=("id",),
                what="add webhook",
                operation="add_webhook",
                hint=(
                    "the webhook may have been added: check with list_webhooks() "
                    "before adding it again"
                ),
            )
        except RebyteError as error:
            if secret:
                _scrub_error(error, secret)
            raise

    def list_webhooks(self) -> List[dict]:
        """The organization's webhooks (the answer's `data` or `webhooks`, or a bare list)."""
        answer = self._request("GET", "/webhooks")
        hooks = answer
        if isinstance(answer, dict):
            hooks = next((answer[k] for k in ("data", "webhooks") if k in answer), None)
        if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
            raise MalformedResponseError(
                "list webhooks: the answer holds no list of webhooks", status=200
            )
        return hooks

    def get_webhook(self, webhook_id: str) -> dict:
        path = self._path("/webhooks/{webhook_id}", webhook_id=webhook_id)
        return self._fetch(path, resource="webhook", fields=("id",), what="get webhook")

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook. A retry that finds it already gone counts as success."""
        path = self._path("/webhooks/{webhook_id}", webhook_id=webhook_id)
        self._request("DELETE", path, resource="webhook", expect_json=False, gone_is_done=True)

    def get_webhook_public_key(self) -> dict:
        """`{"publicKey": PEM, ...}`: the key that verifies Rebyte's webhook signatures (the
        answer's shape is undocumented: the key may come as publicKey, key or public_key)."""
        answer = self._request("GET", "/webhooks/public_key")
        key = _first_string(answer, PUBLIC_KEY_FIELDS)
        if key is None:
            raise MalformedResponseError(
                "get webhook public key: the answer holds no key "
                f"(looked for {', '.join(PUBLIC_KEY_FIELDS)})",
                status=None,
            )
        fields = answer.get("data") if isinstance(answer.get("data"), dict) else answer
        return {**fields, "publicKey": key}
