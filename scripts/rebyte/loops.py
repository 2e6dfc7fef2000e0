"""Polling and paging, written once for every resource."""

from __future__ import annotations

import logging
from typing import (
    Any,
    Callable,
    Iterator,
    Optional,
)

from .checks import _check_int
from .config import _check_positive
from .constants import FINAL_POLL_GRACE, LIST_SLACK, MAX_LIST_ITEMS, MAX_PAGE_SIZE
from .errors import (
    APIConnectionError,
    InputError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
)

logger = logging.getLogger("rebyte")


_UNSEEN = object()  # the state before the first poll: unequal to any state


class _Loops:
    """The loops every resource shares: polling until done, and paging through a listing."""

    # A little over 60 lines, most of them its arguments and docstring: the one poll loop.
    def _poll_until(
        self,
        fetch: Callable[[float], dict],
        is_done: Callable[[dict], bool],
        *,
        timeout: float,
        poll_interval: float,
        max_poll_interval: float,
        backoff: float,
        on_timeout: Callable[[Optional[dict], Optional[BaseException]], BaseException],
        state_of: Callable[[dict], Any] = lambda obj: obj,
        on_status: Optional[Callable[[dict], None]] = None,
        on_pending: Optional[Callable[[float], None]] = None,
        label: str = "",
    ) -> dict:
        """Call `fetch(poll_deadline)` until `is_done(obj)`; return that object.

        Transient failures are ridden out until the deadline, then `on_timeout(last
        object, last error)` is raised. `on_status` hears each change of
        `state_of(obj)`. `on_pending(deadline)` runs once, after the first poll that
        is not done (to wait some other way), and the next poll follows at once.
        """
        # Over 60 lines: one loop keeps the deadline, the backoff, the pending hook and the
        # last state together; split, every piece would need all of them.
        timeout = _check_positive(timeout, "wait timeout", InputError)
        interval = _check_positive(poll_interval, "poll interval", InputError)
        max_interval = max(
            interval, _check_positive(max_poll_interval, "max poll interval", InputError)
        )
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 1:
            raise InputError(f"backoff must be a number of at least 1, got {backoff!r}")
        deadline = self._clock() + timeout
        last: Optional[dict] = None
        last_error: Optional[BaseException] = None
        last_state: Any = _UNSEEN
        pending_tried = on_pending is None
        while True:
            try:
                # The last poll lands on the deadline: a short grace lets it be made, but
                # an earlier poll to a server that never answers ends at the deadline.
                obj = fetch(max(deadline, self._clock() + FINAL_POLL_GRACE))
                last, last_error = obj, None
            except (
                APIConnectionError,
                ServerError,
                RateLimitError,
                MalformedResponseError,
            ) as error:
                last_error = error
                logger.debug("wait %s: transient failure, still waiting: %s", label, error)
            else:
                state = state_of(obj)
                if state != last_state:
                    last_state = state
                    if on_status is not None:
                        on_status(obj)
                if is_done(obj):
                    return obj
                if not pending_tried and on_pending is not None:
                    pending_tried = True
                    on_pending(deadline)
                    continue
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise on_timeout(last, last_error)
            self._sleep(min(interval, remaining))
            interval = min(interval * backoff, max_interval)

    @staticmethod
    def _iter_pages(list_page: Callable[[int, int], dict], page_size: int) -> Iterator[dict]:
        """Every item of `list_page(limit, offset)` pages, each id once.

        It stops on a short page, at `total`, or on a full page of nothing new
        (a server ignoring offset would otherwise loop forever). Pages that go on
        past the first total plus LIST_SLACK, or past MAX_LIST_ITEMS, are an error.
        """
        _check_int(page_size, "page size", 1, MAX_PAGE_SIZE)
        seen = set()
        offset = 0
        bound = MAX_LIST_ITEMS
        while True:
            if offset > bound:
                raise MalformedResponseError(
                    f"the listing never ends: more than {bound:,} items came "
                    f"in pages that keep saying there are more",
                    status=None,
                )
            page = list_page(page_size, offset)
            fresh = 0
            for item in page["data"]:
                item_id = item.get("id") if isinstance(item, dict) else None
                if item_id in seen:
                    continue
                seen.add(item_id)
                fresh += 1
                yield item
            offset += len(page["data"])
            total = page.get("total")
            if bound == MAX_LIST_ITEMS and isinstance(total, int) and not isinstance(total, bool):
                bound = min(MAX_LIST_ITEMS, max(total, 0) + LIST_SLACK)
            if len(page["data"]) < page_size or (isinstance(total, int) and offset >= total):
                return
            if not fresh:
                return

    def _list_page(self, path: str, limit: int, offset: int, what: str) -> dict:
        params = {
            "limit": _check_int(limit, "limit", 1, MAX_PAGE_SIZE),
            "offset": _check_int(offset, "offset", 0),
        }
        page = self._expect_fields(self._request("GET", path, params=params), ("data",), what)
        if not isinstance(page["data"], list):
            raise MalformedResponseError(f"{what}: `data` is not a list", status=200)
        return page
