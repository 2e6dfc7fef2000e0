"""The computers resource: create an Agent Computer, wait until it is ready, list, delete."""

from __future__ import annotations

import logging
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    Optional,
)

from .checks import _check_text, check_id
from .constants import (
    DEFAULT_COMPUTER_WAIT_TIMEOUT,
    MAX_COMPUTER_ICON_CHARS,
    MAX_COMPUTER_NAME_CHARS,
    MAX_PAGE_SIZE,
)
from .errors import ProvisionError, WaitTimeoutError
from .resource import _Resource

logger = logging.getLogger("rebyte")


class Computers(_Resource):
    """`client.computers`: Agent Computers, the VMs that tasks run in."""

    def create(self, name: Optional[str] = None, icon: Optional[str] = None) -> dict:
        """Create an Agent Computer: a VM that provisions in the background.

        Returns at once with `status: "provisioning"`; `computers.wait` waits
        for `ready`. Its `id` is a workspace id: `tasks.create(..., workspace_id=id)`
        runs tasks in it without provisioning. Retried only where the server
        certainly did nothing (429, no connection): any other failure after
        sending raises OutcomeUnknownError.
        """
        body: Dict[str, Any] = {}
        if name is not None:
            body["name"] = _check_text(name, "computer name", MAX_COMPUTER_NAME_CHARS)
        if icon is not None:
            body["icon"] = _check_text(icon, "computer icon", MAX_COMPUTER_ICON_CHARS)
        return self._client._send_once_only(
            "POST",
            "/agent-computers",
            body,
            fields=("id",),
            what="create computer",
            operation="create_computer",
            hint=(
                "the computer may have been created: check with computers.list(limit=5) "
                "before creating it again"
            ),
        )

    def get(self, computer_id: str) -> dict:
        """The computer with its `status` (provisioning, ready or error)."""
        return self._get(computer_id)

    def _get(self, computer_id: str, deadline: Optional[float] = None) -> dict:
        path = self._client._path("/agent-computers/{computer_id}", computer_id=computer_id)
        return self._client._fetch(
            path, resource="computer", fields=("id",), what="get computer", deadline=deadline
        )

    def list(self, limit: int = 50, offset: int = 0) -> dict:
        """One page, newest first: `{"data", "total", "limit", "offset"}`."""
        return self._client._list_page("/agent-computers", limit, offset, "list computers")

    def iter(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """Every computer, newest first, page by page; one already yielded is not repeated."""
        return self._client._iter_pages(
            lambda limit, offset: self.list(limit=limit, offset=offset), page_size
        )

    def wait(
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

        computer = self._client._poll_until(
            lambda deadline: self._get(computer_id, deadline),
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

    def delete(self, computer_id: str) -> None:
        """Delete a computer and its VM. A retry that finds it already gone counts as success."""
        path = self._client._path("/agent-computers/{computer_id}", computer_id=computer_id)
        self._client._request(
            "DELETE", path, resource="computer", expect_json=False, gone_is_done=True
        )
