"""Retries and deadlines: which failures are tried again, how long to pause, and the
watchdog that ends an attempt whose answer trickles.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from typing import (
    Any,
    Callable,
    Optional,
    Tuple,
)

from .config import _retry_after_seconds, _without_query
from .constants import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRYABLE_STATUSES,
    WATCHDOG_TICK,
)
from .errors import APITimeoutError
from .netio import _Abandon, _attempt_limit, _past

logger = logging.getLogger("rebyte")


class _Retries:
    """The retry policy and the deadlines of one call; `_with_retries` is its one entry."""

    # Over 60 lines: the whole retry policy (which failure, which status, which pause, which
    # deadline) in one loop, so that no rule hides in a helper and none is forgotten.
    def _with_retries(
        self,
        method: str,
        url: str,
        send: Callable[[Tuple[float, float]], Any],
        *,
        idempotent: bool,
        read_timeout: Optional[float] = None,
        deadline: Optional[float] = None,
        watchdog: bool = True,
        answer_limit: Optional[Callable[[], float]] = None,
    ) -> Tuple[Any, int]:
        """Run `send(timeout, abandoned)` under the retry policy; return (final response,
        attempts made).

        Idempotent calls retry on connection errors, timeouts and retryable
        statuses. Others retry only on 429 and on connections never made.
        No attempt or pause runs past `deadline` (or `total_timeout` from now);
        with `watchdog`, not even against a server that trickles its answer.
        `answer_limit()` is a moving end for an attempt (an upload's: its last
        byte plus the read timeout). An attempt given up on sees `abandoned` set.
        """
        # Over 60 lines: the policy in one reading order (attempt, classify, pause or give
        # up); its parts are helpers already (_backoff, _past, _retry_after_seconds).
        if self.total_timeout is not None:
            own_deadline = self._clock() + self.total_timeout
            deadline = own_deadline if deadline is None else min(deadline, own_deadline)
        requests = self._requests
        attempt = 0
        while True:
            timeout = (self.connect_timeout, read_timeout or self.read_timeout)
            if deadline is not None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise APITimeoutError(
                        f"{method} {_without_query(url)}: no answer within the time allowed",
                        maybe_sent=attempt > 0,
                    )
                timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
            started = time.monotonic()
            limit = _attempt_limit(deadline if watchdog else None, answer_limit)
            try:
                if limit is not None:
                    response = self._send_before(limit, send, timeout)
                else:
                    response = send(timeout, _Abandon())
            except requests.exceptions.RequestException as error:
                failure = self._connection_error(method, url, error)
                logger.debug(
                    "%s %s -> %s (attempt %d)",
                    method,
                    _without_query(url),
                    type(failure).__name__,
                    attempt + 1,
                )
                retryable = idempotent or not failure.maybe_sent
                delay = self._backoff(attempt)
                if (
                    not retryable
                    or attempt >= self.max_retries
                    or _past(deadline, delay, self._clock)
                ):
                    raise failure from None
            else:
                logger.debug(
                    "%s %s -> %d in %.3fs (attempt %d)",
                    method,
                    _without_query(url),
                    response.status_code,
                    time.monotonic() - started,
                    attempt + 1,
                )
                status = response.status_code
                retryable = status == 429 or (idempotent and status in RETRYABLE_STATUSES)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                if (
                    not retryable
                    or attempt >= self.max_retries
                    or delay > MAX_RETRY_AFTER
                    or _past(deadline, delay, self._clock)
                ):
                    return response, attempt + 1
                response.close()
            attempt += 1
            self._sleep(delay)

    def _send_before(
        self,
        limit: Callable[[], float],
        send: Callable[[Tuple[float, float], _Abandon], Any],
        timeout: Tuple[float, float],
    ) -> Any:
        """`send(timeout, abandoned)`, abandoned when the clock passes `limit()`.

        Read timeouts bound each read, not the whole answer: a server that sends a
        byte now and then would hold the call forever. So the request runs in a
        helper thread, and the caller stops waiting for it at the limit; the helper
        then stops reading and closes what it opened.
        """
        outcome: queue.Queue = queue.Queue(maxsize=1)
        abandoned = _Abandon()

        def run() -> None:
            try:
                response = send(timeout, abandoned)
            except BaseException as error:  # handed to the caller, which raises it
                outcome.put((None, error))
                return
            outcome.put((response, None))

        threading.Thread(target=run, name="rebyte-request", daemon=True).start()
        while True:
            left = limit() - self._clock()
            try:
                if left <= 0:
                    response, error = outcome.get_nowait()
                else:
                    response, error = outcome.get(timeout=min(left, WATCHDOG_TICK))
                break
            except queue.Empty:
                if left > 0:
                    continue
            abandoned.set()
            with contextlib.suppress(queue.Empty):  # it came as we gave up: close it too
                late, _ = outcome.get_nowait()
                if late is not None:
                    late.close()
            raise self._requests.exceptions.ReadTimeout(
                "the answer did not arrive in the time allowed"
            )
        if error is not None:
            raise error
        return response

    @staticmethod
    def _backoff(attempt: int) -> float:
        delay = min(INITIAL_RETRY_DELAY * 2**attempt, MAX_RETRY_DELAY)
        return delay * (1 - 0.25 * random.random())
