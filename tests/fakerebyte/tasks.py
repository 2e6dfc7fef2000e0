"""Tasks and their prompts: the clock model of a prompt (_Prompt, _Task), the task
routes (Tasks) and the JSON shapes the task reads answer (TaskViews). Both classes are
mixins of FakeRebyte (fakerebyte.core): they share its state and lock.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from fakerebyte.base import (
    APP_URL,
    Reply,
    _Abort,
    _HttpError,
    _int_param,
    _invalid,
    _Request,
    _title_for,
    _without_markers,
    final_result_for,
)

EXECUTORS = ("opencode", "claude", "gemini", "codex")
DEFAULT_EXECUTOR = "claude"
DEFAULT_MODEL = "lite"
VISIBILITIES = ("private", "shared", "public")
MAX_PROMPT_CHARS = 100_000
PENDING_FRACTION = 0.1

TERMINAL = ("succeeded", "failed", "canceled")
TASK_STATUS_OF_PROMPT = {
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "canceled",
    "pending": "running",
    "running": "running",
}

_DURATION_RE = re.compile(r"\[duration=(\d+(?:\.\d*)?|\.\d+)\]")
_GITHUB_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")


@dataclass
class _Prompt:
    """One prompt; its status and events follow from the clock (monotonic seconds)."""

    id: str
    text: str
    skills: list
    filenames: list
    executor: str
    model: str
    submitted: float
    duration: float
    canceled_at: float | None = None
    stream_connections: int = 0
    artifacts_left: bool = False
    agent_ran: bool = False  # the simulated agent's run (fakerebyte.agent) is done

    @property
    def fails(self) -> bool:
        return "[fail]" in self.text

    @property
    def asks(self) -> bool:
        return "[ask]" in self.text

    @property
    def silent(self) -> bool:
        """Answered by the service itself: no data events, an empty answer."""
        return "[silent]" in self.text

    @property
    def starts(self) -> float:
        return self.submitted + PENDING_FRACTION * self.duration

    @property
    def ends(self) -> float:
        return self.submitted + self.duration

    def status(self, now: float) -> str:
        if self.canceled_at is not None:
            return "canceled"
        if now < self.starts:
            return "pending"
        if now < self.ends:
            return "running"
        return "failed" if self.fails else "succeeded"

    def completed_at(self, now: float) -> float | None:
        if self.canceled_at is not None:
            return self.canceled_at
        return self.ends if now >= self.ends else None

    def final_result(self, now: float, delay: float = 0.0) -> str | None:
        """The answer once filled in: `delay` seconds after a success ("" when silent)."""
        if self.status(now) != "succeeded" or now < self.ends + delay:
            return None
        return "" if self.silent else final_result_for(self.text)

    def schedule(self) -> list:
        """(time, eventType, payload) of every event the prompt will emit if left alone."""
        if self.silent:
            return []
        listing = "\n".join(self.filenames)
        steps = [
            ("init", {"executor": self.executor, "model": self.model, "skills": self.skills}),
            ("thinking", {"text": "Reading the request: " + _without_markers(self.text)[:40]}),
            ("tool_use", {"tool": "bash", "input": {"command": "ls /code"}}),
            ("tool_result", {"tool": "bash", "output": listing, "isError": False}),
            ("text", {"text": "Working on it."}),
        ]
        if self.asks:
            steps.append(("ask_user_question", {"question": "Which format should the answer use?"}))
        running = self.ends - self.starts
        timed = [
            (self.starts + running * i / len(steps), kind, payload)
            for i, (kind, payload) in enumerate(steps)
        ]
        if self.fails:
            result = {"isError": True, "error": "The agent failed (the prompt asked: [fail])."}
        else:
            result = {"text": final_result_for(self.text)}
        return [*timed, (self.ends, "result", result)]

    def events(self, now: float) -> list:
        """The scheduled events that have happened by `now` (none after a cancel)."""
        return [
            event
            for event in self.schedule()
            if event[0] <= now and (self.canceled_at is None or event[0] < self.canceled_at)
        ]

    def next_change(self, now: float) -> float | None:
        """When the status or the event list next changes, if nothing else happens."""
        if self.canceled_at is not None:
            return None
        times = [t for t, _, _ in self.schedule() if t > now] + [self.starts, self.ends]
        upcoming = [t for t in times if t > now]
        return min(upcoming) if upcoming else None


@dataclass
class _Task:
    id: str
    workspace_id: str
    title: str
    executor: str
    model: str
    created: float
    prompts: list
    visibility: str = "shared"
    deleted: bool = False

    def status(self, now: float) -> str:
        statuses = [prompt.status(now) for prompt in self.prompts]
        if any(status not in TERMINAL for status in statuses):
            return "running"
        return TASK_STATUS_OF_PROMPT[statuses[-1]]

    def completed_at(self, now: float) -> float | None:
        if self.status(now) == "running":
            return None
        return max(prompt.completed_at(now) for prompt in self.prompts)


@dataclass
class _EventStream:
    """Returned by the events route: the handler streams it (it cannot be a Reply)."""

    prompt: _Prompt
    connection_index: int


class Tasks:
    """The task routes (a mixin of FakeRebyte)."""

    def _live_task(self, task_id: str) -> _Task:
        task = self._tasks.get(task_id)
        if task is None or task.deleted:
            raise _HttpError(404, "not_found", f"Task {task_id} not found.")
        return task

    def _validated_prompt(self, body: dict) -> tuple:
        """(prompt, skills, filenames) of a create or follow-up body; 400 when wrong."""
        prompt = body.get("prompt")
        if prompt is None:
            raise _invalid("prompt is required")
        if not isinstance(prompt, str):
            raise _invalid("prompt must be a string")
        if not prompt.strip():
            raise _invalid("prompt must not be empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise _invalid(f"prompt is longer than {MAX_PROMPT_CHARS} characters ({len(prompt)})")
        skills = body.get("skills", [])
        if not isinstance(skills, list) or not all(
            isinstance(skill, str) and skill.strip() for skill in skills
        ):
            raise _invalid("skills must be a list of non-empty strings")
        files = body.get("files", [])
        if not isinstance(files, list):
            raise _invalid("files must be a list of {id, filename} objects")
        filenames = []
        with self._lock:
            for index, item in enumerate(files):
                if not (
                    isinstance(item, dict)
                    and isinstance(item.get("id"), str)
                    and isinstance(item.get("filename"), str)
                ):
                    raise _invalid(f"files[{index}] must be an object with string id and filename")
                record = self._files.get(item["id"])
                if record is None:
                    raise _invalid(f"files[{index}]: no file with id {item['id']}")
                if not record.uploaded:
                    raise _invalid(
                        f"files[{index}]: file {item['id']} was never uploaded "
                        "(PUT its uploadUrl first)"
                    )
                if item["filename"] != record.filename:
                    raise _invalid(
                        f"files[{index}].filename must be {record.filename!r}, "
                        "the name POST /v1/files returned"
                    )
                filenames.append(record.filename)
        return prompt, list(skills), filenames

    def _validated_task_options(self, body: dict) -> tuple:
        """(executor, model, workspace_id) of a create body; 400 when wrong."""
        executor = body.get("executor", DEFAULT_EXECUTOR)
        if executor not in EXECUTORS:
            raise _invalid(f"executor must be one of {', '.join(EXECUTORS)}")
        model = body.get("model", DEFAULT_MODEL)
        if not isinstance(model, str) or not model.strip():
            raise _invalid("model must be a non-empty string")
        github_url = body.get("githubUrl")
        if github_url is not None and not (
            isinstance(github_url, str)
            and _GITHUB_REPO_RE.fullmatch(github_url)
            and github_url.split("/")[1] not in (".", "..")
        ):
            raise _invalid("githubUrl must be 'owner/repo'")
        if "branchName" in body and not isinstance(body["branchName"], str):
            raise _invalid("branchName must be a string")
        workspace_id = body.get("workspaceId")
        if "workspaceId" in body:
            if not isinstance(workspace_id, str):
                raise _invalid("workspaceId must be a string")
            with self._lock:
                computer = self._computers.get(workspace_id)
                if computer is not None and not computer.deleted:
                    status = computer.status(self._now())
                    if status != "ready":
                        raise _invalid(
                            f"workspaceId {workspace_id} is an Agent Computer that "
                            f"is {status}, not ready"
                        )
                elif workspace_id not in self._workspaces or computer is not None:
                    raise _invalid(f"workspaceId {workspace_id} is not a known workspace")
        return executor, model, workspace_id

    def _new_prompt(
        self, task: _Task, text: str, skills: list, filenames: list, now: float
    ) -> _Prompt:
        marker = _DURATION_RE.search(text)
        if marker:
            duration = float(marker.group(1))
        else:  # a prompt the service answers itself is done at once
            duration = 0.0 if "[silent]" in text else float(self.prompt_duration)
        prompt = _Prompt(
            str(uuid.uuid4()),
            text,
            skills,
            filenames,
            task.executor,
            task.model,
            submitted=now,
            duration=duration,
        )
        task.prompts.append(prompt)
        return prompt

    def _create_task(self, request: _Request) -> Reply:
        body = request.json_object()
        text, skills, filenames = self._validated_prompt(body)
        executor, model, workspace_id = self._validated_task_options(body)
        if workspace_id is None:
            self._stopping.wait(float(self.provision_delay))
        if self._stopping.is_set():
            raise _Abort()
        with self._lock:
            now = self._now()
            workspace_id = workspace_id or str(uuid.uuid4())
            executor = self.service_executor or executor  # what actually runs
            model = self.service_model or model
            task = _Task(
                str(uuid.uuid4()),
                workspace_id,
                _title_for(text),
                executor,
                model,
                created=now,
                prompts=[],
            )
            self._new_prompt(task, text, skills, filenames, now)
            self._tasks[task.id] = task
            self._workspaces.add(workspace_id)
            self.tasks_created += 1
        self._notify()
        return Reply.json(
            201,
            {
                "id": task.id,
                "workspaceId": task.workspace_id,
                "url": f"{APP_URL}/run/{task.id}",
                "status": "running",
                "createdAt": self._iso(task.created),
            },
        )

    def _seed_tasks(self, count: int) -> None:
        """Completed tasks, one second apart, all older than anything created later."""
        now = self._now()
        with self._lock:
            for number in range(1, count + 1):
                created = now - (count - number + 1)
                task = _Task(
                    str(uuid.uuid4()),
                    str(uuid.uuid4()),
                    f"Seeded task {number}",
                    DEFAULT_EXECUTOR,
                    DEFAULT_MODEL,
                    created=created,
                    prompts=[],
                )
                prompt = self._new_prompt(task, f"Seeded task {number}", [], [], created)
                prompt.duration = min(prompt.duration, 0.5)
                self._tasks[task.id] = task
                self._workspaces.add(task.workspace_id)

    def _list_tasks(self, request: _Request) -> Reply:
        return self._list_page(request, self._tasks, self._summary_json)

    def _list_page(self, request: _Request, items: dict, to_json) -> Reply:
        """One page of the live items, newest first: {data, total, limit, offset}."""
        limit = _int_param(request.query, "limit", 50, 1, 100)
        offset = _int_param(request.query, "offset", 0, 0, None)
        with self._lock:
            now = self._now()
            live = [item for item in reversed(items.values()) if not item.deleted]
            page = [to_json(item, now) for item in live[offset : offset + limit]]
        return Reply.json(200, {"data": page, "total": len(live), "limit": limit, "offset": offset})

    def _get_task(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            return Reply.json(200, self._task_json(self._live_task(task_id), self._now()))

    def _delete_task(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            self._live_task(task_id).deleted = True
        return Reply(204)

    def _add_prompt(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            self._live_task(task_id)
        text, skills, filenames = self._validated_prompt(request.json_object())
        with self._lock:
            task = self._live_task(task_id)
            prompt = self._new_prompt(task, text, skills, filenames, self._now())
            self.prompts_created += 1
        self._notify()
        return Reply.json(201, {"promptId": prompt.id})

    def _set_visibility(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            self._live_task(task_id)
        visibility = request.json_object().get("visibility")
        if visibility not in VISIBILITIES:
            raise _invalid(f"visibility must be one of {', '.join(VISIBILITIES)}")
        with self._lock:
            self._live_task(task_id).visibility = visibility
        answer = {"visibility": visibility}
        if visibility == "public":
            answer["shareUrl"] = f"{APP_URL}/share/{task_id}"
        return Reply.json(200, answer)

    def _cancel(self, request: _Request, task_id: str) -> Reply:
        with self._lock:
            task = self._live_task(task_id)
            now = self._now()
            for prompt in task.prompts:
                if prompt.status(now) not in TERMINAL:
                    prompt.canceled_at = now
            status = task.status(now)
        self._notify()
        if self.cancel_answer == "204":
            return Reply(204)
        return Reply.json(
            200,
            {"status": {"id": task_id, "status": status}, "empty": {}, "ok": {"ok": True}}[
                self.cancel_answer
            ],
        )

    def _content(self, request: _Request, task_id: str) -> Reply:
        with_events = "events" in request.query.get("include", "").split(",")
        with self._lock:
            task = self._live_task(task_id)
            now = self._now()
            prompts = []
            for prompt in task.prompts:
                status, _ = self._seen(prompt, now)
                response = None
                if status == "succeeded" and not prompt.silent:
                    response = prompt.final_result(now, float(self.final_result_delay))
                item = {
                    "id": prompt.id,
                    "status": status,
                    "userPrompt": prompt.text,
                    "response": response,
                    **self._prompt_times(prompt, now),
                }
                if not self.content_prompt_ids:
                    del item["id"]
                if with_events:
                    item["events"] = self._events_json(prompt, now)
                prompts.append(item)
        return Reply.json(200, {"id": task.id, "prompts": prompts})

    def _events(self, request: _Request, task_id: str) -> _EventStream:
        with self._lock:
            task = self._live_task(task_id)
            if not self.events_route:
                raise _HttpError(404, "not_found", f"No route for {request.path}.")
            prompt = task.prompts[-1]
            index = prompt.stream_connections
            prompt.stream_connections += 1
        return _EventStream(prompt, index)


class TaskViews:
    """How tasks, prompts and events read in JSON (a mixin of FakeRebyte)."""

    def _seen(self, prompt: _Prompt, now: float) -> tuple:
        """(status, completed_at) of a prompt as task reads show it: task_read_lag seconds
        after its end it still reads running (the events stream knows sooner)."""
        status, completed = prompt.status(now), prompt.completed_at(now)
        if status in TERMINAL and now < completed + float(self.task_read_lag):
            return "running", None
        return status, completed

    def _task_seen(self, task: _Task, now: float) -> tuple:
        """(status, completed_at, the latest prompt's seen status) as task reads show it."""
        seen = [self._seen(prompt, now) for prompt in task.prompts]
        if any(status not in TERMINAL for status, _ in seen):
            return "running", None, seen[-1][0]
        return (TASK_STATUS_OF_PROMPT[seen[-1][0]], max(done for _, done in seen), seen[-1][0])

    def _prompt_times(self, prompt: _Prompt, now: float) -> dict:
        submitted = self._iso(prompt.submitted)
        if self.submitted_equals_completed:
            return {"submittedAt": submitted, "completedAt": submitted}
        return {"submittedAt": submitted, "completedAt": self._iso(self._seen(prompt, now)[1])}

    def _shown_answer(self, prompt: _Prompt, now: float) -> str | None:
        """A prompt's finalResult as the task view and the done message show it."""
        answer = prompt.final_result(now, float(self.final_result_delay))
        if answer is not None and self.empty_final_result:
            return ""
        return answer

    def _task_final_result(self, task: _Task, now: float, latest_status: str) -> str | None:
        if latest_status != "succeeded":
            return None
        return self._shown_answer(task.prompts[-1], now)

    def _summary_json(self, task: _Task, now: float) -> dict:
        status, completed, _ = self._task_seen(task, now)
        row = {
            "id": task.id,
            "url": f"{APP_URL}/run/{task.id}",
            "title": task.title,
            "executor": task.executor,
            "model": task.model,
            "createdAt": self._iso(task.created),
            "completedAt": self._iso(completed),
        }
        if self.task_view_extras:
            row["workspaceId"] = task.workspace_id
        if self.list_status:
            row["status"] = status
        return row

    def _task_json(self, task: _Task, now: float) -> dict:
        status, completed, latest = self._task_seen(task, now)
        view = {
            "id": task.id,
            "url": f"{APP_URL}/run/{task.id}",
            "status": status,
            "title": task.title,
            "executor": task.executor,
            "model": task.model,
            "createdAt": self._iso(task.created),
            "completedAt": self._iso(completed),
            "prompts": [
                {
                    "id": prompt.id,
                    "status": self._seen(prompt, now)[0],
                    **self._prompt_times(prompt, now),
                }
                for prompt in task.prompts
            ],
            "finalResult": self._task_final_result(task, now, latest),
        }
        if self.task_view_extras:
            view["workspaceId"] = task.workspace_id
            view["visibility"] = task.visibility
        return view

    def _done_word(self, status: str) -> str:
        """The word a done message carries: the prompt's, or (knob) the task's."""
        return TASK_STATUS_OF_PROMPT[status] if self.done_status_words == "task" else status

    def _events_json(self, prompt: _Prompt, now: float) -> list:
        return [
            {
                "seq": seq,
                "timestamp": self._iso(moment),
                "promptId": prompt.id,
                "eventType": kind,
                "payload": payload,
                "eventKey": f"{prompt.id}:{seq}",
            }
            for seq, (moment, kind, payload) in enumerate(prompt.events(now))
        ]
