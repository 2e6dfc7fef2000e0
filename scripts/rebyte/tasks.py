"""The tasks resource: `client.tasks.create(...)`, `.get`, `.list`, `.wait`, `.result`, ..."""

from __future__ import annotations

import logging
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    Optional,
)

from .bodies import _check_task_shape
from .checks import (
    _check_file_refs,
    _check_int,
    _check_optional_string,
    _check_string_list,
    check_id,
    check_prompt,
    check_task_id,
    normalize_github_repo,
)
from .constants import MAX_PAGE_SIZE, RESULT_SETTLE_FIRST_DELAY, VISIBILITIES
from .errors import InputError, MalformedResponseError, NotFoundError, WorkspaceUnknownError
from .taskstate import _answer_in_view, _matching_entry, _prompt_ids, _prompt_status
from .taskwaits import _TaskWaits

logger = logging.getLogger("rebyte")


class Tasks(_TaskWaits):
    """`client.tasks`: create, read, list, follow up, share, cancel and delete tasks."""

    def create(
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
        body = self.body(
            prompt,
            executor=executor,
            model=model,
            skills=skills,
            files=files,
            github_url=github_url,
            branch_name=branch_name,
            workspace_id=workspace_id,
        )
        return self._client._send_once_only(
            "POST",
            "/tasks",
            body,
            fields=("id",),
            what="create task",
            operation="create_task",
            hint=(
                "the task may have been created: check with tasks.list(limit=5) "
                "before creating it again"
            ),
            read_timeout=self._client.create_timeout,
        )

    @staticmethod
    def body(
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

    def get(self, task_id: str) -> dict:
        """The task with its derived `status` and its `prompts`."""
        return self._get(task_id)

    def _get(self, task_id: str, deadline: Optional[float] = None) -> dict:
        path = self._client._path("/tasks/{task_id}", task_id=task_id)
        task = self._client._fetch(
            path, resource="task", fields=("id",), what="get task", deadline=deadline
        )
        return _check_task_shape(task)

    def list(self, limit: int = 50, offset: int = 0) -> dict:
        """One page, newest first: `{"data", "total", "limit", "offset"}`."""
        params = {
            "limit": _check_int(limit, "limit", 1, MAX_PAGE_SIZE),
            "offset": _check_int(offset, "offset", 0),
        }
        page = self._client._request("GET", "/tasks", params=params)
        page = self._client._expect_fields(page, ("data",), "list tasks")
        if not isinstance(page["data"], list):
            raise MalformedResponseError("list tasks: `data` is not a list", status=200)
        return page

    def iter(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Every task, newest first, page by page; a task already yielded is not repeated."""
        return self._client._iter_pages(
            lambda limit, offset: self.list(limit=limit, offset=offset), page_size
        )

    def follow_up(
        self,
        task_id: str,
        prompt: str,
        skills: Optional[Iterable[str]] = None,
        files: Optional[Iterable[dict]] = None,
    ) -> dict:
        """Send another prompt to a task (its VM is resumed if stopped); returns `{"promptId"}`."""
        path = self._client._path("/tasks/{task_id}/prompts", task_id=task_id)
        body: Dict[str, Any] = {"prompt": check_prompt(prompt)}
        if skills is not None:
            body["skills"] = _check_string_list(skills, "skills")
        if files is not None:
            body["files"] = _check_file_refs(files)
        # Like a create, a follow-up may first resume a stopped VM: it gets the long timeout.
        return self._client._send_once_only(
            "POST",
            path,
            body,
            fields=("promptId",),
            what="follow up",
            operation="follow_up",
            hint=(
                f"the follow-up may have been sent: check with tasks.get({task_id!r}) "
                "before sending it again"
            ),
            resource="task",
            resource_id=task_id,
            read_timeout=self._client.create_timeout,
        )

    def set_visibility(self, task_id: str, visibility: str = "public") -> dict:
        """Set who can see a task; `shareUrl` comes back when it is public."""
        if visibility not in VISIBILITIES:
            raise InputError(
                f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}"
            )
        path = self._client._path("/tasks/{task_id}/visibility", task_id=task_id)
        answer = self._client._request(
            "PATCH", path, resource="task", json_body={"visibility": visibility}
        )
        return self._client._expect_fields(answer, ("visibility",), "set visibility")

    def delete(self, task_id: str) -> None:
        """Soft-delete a task. A retry that finds it already gone counts as success."""
        path = self._client._path("/tasks/{task_id}", task_id=task_id)
        self._client._request("DELETE", path, resource="task", expect_json=False, gone_is_done=True)

    def cancel(self, task_id: str) -> dict:
        """Stop the running prompt; the task still takes follow-ups afterwards."""
        path = self._client._path("/tasks/{task_id}/cancel", task_id=task_id)
        try:
            answer = self._client._request("POST", path, resource="task", idempotent=True)
        except MalformedResponseError:  # a 2xx without JSON (204, say): canceled all the same
            return {}
        return answer if isinstance(answer, dict) else {}

    def content(self, task_id: str, *, include_events: bool = False) -> dict:
        """The prompts with `userPrompt` and the agent's `response`."""
        params = {"include": "events"} if include_events else None
        path = self._client._path("/tasks/{task_id}/content", task_id=task_id)
        content = self._client._request("GET", path, resource="task", params=params)
        return self._client._expect_fields(content, ("prompts",), "get task content")

    def result(
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
        settle = self._client.result_settle if settle is None else settle
        deadline = self._client._clock() + max(0.0, settle)
        task = self._get(task_id)
        delay = RESULT_SETTLE_FIRST_DELAY
        while True:
            answer, latest = _answer_in_view(task, prompt_id)
            if answer or not latest or _prompt_status(task, prompt_id) != "succeeded":
                break
            remaining = deadline - self._client._clock()
            if remaining <= 0:
                break
            self._client._sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
            task = self._get(task_id)
        if answer:
            return answer
        return self._content_answer(task_id, task, prompt_id)

    def _content_answer(self, task_id: str, task: dict, prompt_id: Optional[str]) -> Optional[str]:
        try:
            content = self.content(task_id)
        except (NotFoundError, MalformedResponseError):
            return None
        entries = [p for p in content.get("prompts") or [] if isinstance(p, dict)]
        entry = _matching_entry(entries, _prompt_ids(task), prompt_id)
        response = (entry or {}).get("response")
        return response if isinstance(response, str) else None

    def workspace_of(self, task_or_workspace_id: str, *, known: Optional[str] = None) -> str:
        """The workspace a task ran in, or the id itself when no task has it (a workspace id).

        The documents show a task's `workspaceId` only in its create answer, so a
        caller that kept it passes it as `known`; the task view is asked only when a
        server happens to carry it there, and otherwise WorkspaceUnknownError says so.
        """
        task_id = check_id(task_or_workspace_id, "task or workspace id")
        if known is not None:
            return check_id(known, "workspace id")
        try:
            task = self._get(task_id)
        except NotFoundError:
            return task_id
        workspace_id = task.get("workspaceId")
        if not isinstance(workspace_id, str) or not workspace_id.strip():
            raise WorkspaceUnknownError(task_id)
        return check_id(workspace_id, "workspace id")
