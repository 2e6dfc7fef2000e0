"""`RebyteClient`: the configuration of `_Transport`, and the resources as attributes."""

from __future__ import annotations

from typing import (
    Any,
    Optional,
)

from .artifacts import Artifacts
from .computers import Computers
from .config import _redact_key
from .files import Files
from .tasks import Tasks
from .transport import _Transport
from .webhooks import Webhooks


class RebyteClient(_Transport):
    """A client for the Rebyte v1 API.

    Configuration comes from the arguments, then the environment
    (`REBYTE_API_KEY`, `REBYTE_BASE_URL`, `REBYTE_CONNECT_TIMEOUT`,
    `REBYTE_READ_TIMEOUT`, `REBYTE_CREATE_TIMEOUT`, `REBYTE_MAX_RETRIES`).

    One client may be shared across threads: it keeps one `requests.Session`
    whose connection pool (`pool_size` connections per host) is safe for
    concurrent requests, and it holds no other mutable state.
    """

    def __init__(self, api_key: Optional[str] = None, **options: Any) -> None:
        super().__init__(api_key, **options)
        # The resources, made at once: each reads the transport through this client.
        self.tasks = Tasks(self)
        self.files = Files(self)
        self.artifacts = Artifacts(self)
        self.computers = Computers(self)
        self.webhooks = Webhooks(self)

    def describe_request(self, method: str, path: str, body: Optional[dict] = None) -> dict:
        """What a call would send, with the key redacted: for dry runs and logs."""
        headers = {"API_KEY": _redact_key(self._api_key), "User-Agent": self.user_agent}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return {"method": method, "url": self.base_url + path, "headers": headers, "json": body}
