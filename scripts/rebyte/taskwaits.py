"""The waits of `client.tasks`: `wait` polls (or listens) until a task or prompt ends, `events`
follows the agent's event stream.
"""

from __future__ import annotations

import logging
from typing import (
    Any,
    Callable,
    Iterator,
    Optional,
)

from .checks import check_task_id
from .config import _check_positive
from .constants import DEFAULT_WAIT_TIMEOUT, POLLED_EVENTS_FIRST_DELAY, POLLED_EVENTS_MAX_DELAY
from .errors import (
    APIConnectionError,
    InputError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    RebyteError,
    ServerError,
    WaitTimeoutError,
)
from .resource import _Resource
from .streaming import _event_identity
from .taskstate import _done_from_task, _ended_word, _is_done, _progress_state

logger = logging.getLogger("rebyte")


class _DoneListener:
    """What a wait does between polls with `use_events`: listen on the event stream until
    it says the prompt ended. A failure costs nothing (the wait polls either way); a
    server with no stream for the task (404) is not asked again by this wait."""

    def __init__(self, client: Any, task_id: str, prompt_id: Optional[str]) -> None:
        self._client, self._task_id, self._prompt_id = client, task_id, prompt_id
        self._usable = True

    def listen(self, deadline: float) -> None:
        remaining = deadline - self._client._clock()
        if remaining <= 0 or not self._usable:
            return
        events = self._client.tasks.events(
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


class _TaskWaits(_Resource):
    """Waiting on a task: polling until it (or one prompt) ends, and its event stream."""

    def wait(
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

        stream = _DoneListener(self._client, task_id, prompt_id) if use_events else None
        return self._client._poll_until(
            lambda deadline: self._get(task_id, deadline),
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

    # Over 60 lines: one generator whose state (events seen, failures, reconnects, the last
    # contact) spans every reconnect; split up, that state would have to travel between parts.
    def events(
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
        # Over 60 lines: one generator, whose reconnects, de-duplication, deadline and polling
        # fallback share one stream's state; the inner helpers keep each step short.
        path = self._client._path("/tasks/{task_id}/events", task_id=task_id)
        deadline = None
        if timeout is not None:
            deadline = self._client._clock() + _check_positive(timeout, "watch timeout", InputError)

        def check_deadline() -> None:
            if deadline is not None and self._client._clock() >= deadline:
                raise WaitTimeoutError(
                    f"timed out after {timeout:g}s watching task {task_id}",
                    task_id=task_id,
                    prompt_id=prompt_id,
                )

        seen = set()
        failures = 0
        reconnects = 0
        last_contact = self._client._clock()
        while True:
            progressed = False
            try:
                for kind, data in self._client._stream_sse(path, deadline):
                    check_deadline()
                    if kind == "open":
                        last_contact = self._client._clock()
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
                self._get(task_id, deadline)  # a task that is gone stays a NotFoundError
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
                    self._client.total_timeout is not None
                    and self._client._clock() - last_contact >= self._client.total_timeout
                )
                if failures > self._client.max_retries or out_of_time:
                    raise
                logger.debug("events %s: stream failed, reconnecting: %s", task_id, error)
            reconnects = 0 if progressed else reconnects + 1
            if reconnects > max_reconnects:
                raise APIConnectionError(
                    f"the event stream of task {task_id} ended {max_reconnects} times without news"
                )
            check_deadline()
            self._client._sleep(reconnect_delay if not progressed else 0)

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
            task = self._get(task_id, deadline)
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
                delay = min(delay, max(deadline - self._client._clock(), 0.0))
            self._client._sleep(delay)
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
        task = self.get(task_id)
        prompts = [p for p in task.get("prompts") or [] if isinstance(p, dict)]
        latest = prompts[-1] if prompts else {}
        ours = prompt_id is None or latest.get("id") == prompt_id
        if not _is_done(task, prompt_id):
            counted = isinstance(done.get("lastSeq"), int) and done["lastSeq"] >= 0
            if ours and prompts and counted and _ended_word(done.get("status")):
                return {"eventType": "done", **done, "promptId": latest.get("id")}
            return None
        return _done_from_task(task, prompt_id, done)
