"""Agent Computers: persistent workspaces that provision in the background, lazily from
the clock (_Computer), and their routes (Computers, a mixin of FakeRebyte).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fakerebyte.base import APP_URL, Reply, _HttpError, _invalid, _Request

MAX_COMPUTER_NAME = 200
MAX_COMPUTER_ICON = 50
PROVISION_ERROR_MARKER = "[provision-error]"
DEFAULT_COMPUTER_NAME = "Agent Computer"


@dataclass
class _Computer:
    """An Agent Computer: provisioning until ready_at, then ready (or error by its marker)."""

    id: str
    name: str
    icon: str | None
    created: float
    ready_at: float
    deleted: bool = False

    @property
    def fails(self) -> bool:
        return PROVISION_ERROR_MARKER in self.name

    def status(self, now: float) -> str:
        if now < self.ready_at:
            return "provisioning"
        return "error" if self.fails else "ready"


class Computers:
    """The Agent Computer routes (a mixin of FakeRebyte)."""

    def _computer_json(self, computer: _Computer, now: float) -> dict:
        status = computer.status(now)
        return {
            "id": computer.id,
            "name": computer.name,
            "status": status,
            "sandboxId": f"sbx_{computer.id[:8]}" if status == "ready" else None,
            "icon": computer.icon,
            "url": f"{APP_URL}/computers/{computer.id}",
            "provisionError": (
                f"The VM could not be provisioned (the name asked: {PROVISION_ERROR_MARKER})."
                if status == "error"
                else None
            ),
            "createdAt": self._iso(computer.created),
            "updatedAt": self._iso(
                computer.created if status == "provisioning" else computer.ready_at
            ),
        }

    def _live_computer(self, computer_id: str) -> _Computer:
        computer = self._computers.get(computer_id)
        if computer is None or computer.deleted:
            raise _HttpError(404, "not_found", f"Agent Computer {computer_id} not found.")
        return computer

    def _create_computer(self, request: _Request) -> Reply:
        body = request.json_object() if request.raw else {}
        name = body.get("name", DEFAULT_COMPUTER_NAME)
        if not isinstance(name, str) or not name.strip():
            raise _invalid("name must be a non-empty string")
        if len(name) > MAX_COMPUTER_NAME:
            raise _invalid(f"name is longer than {MAX_COMPUTER_NAME} characters")
        icon = body.get("icon")
        if icon is not None and not isinstance(icon, str):
            raise _invalid("icon must be a string")
        if icon is not None and len(icon) > MAX_COMPUTER_ICON:
            raise _invalid(f"icon is longer than {MAX_COMPUTER_ICON} characters")
        with self._lock:
            now = self._now()
            computer = _Computer(
                str(uuid.uuid4()),
                name,
                icon,
                created=now,
                ready_at=now + float(self.computer_ready_delay),
            )
            self._computers[computer.id] = computer
            return Reply.json(201, self._computer_json(computer, now))

    def _list_computers(self, request: _Request) -> Reply:
        return self._list_page(request, self._computers, self._computer_json)

    def _get_computer(self, request: _Request, computer_id: str) -> Reply:
        with self._lock:
            return Reply.json(
                200, self._computer_json(self._live_computer(computer_id), self._now())
            )

    def _delete_computer(self, request: _Request, computer_id: str) -> Reply:
        with self._lock:
            self._live_computer(computer_id).deleted = True
        return Reply(204)
