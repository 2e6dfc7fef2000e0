"""The base of the resources: each holds its client and reads the transport through it."""

from __future__ import annotations

from typing import (
    Any,
)


class _Resource:
    """One group of endpoints of a client (`client.tasks`, `client.files`, ...).

    It keeps a reference to its client and reads the transport (and its test seams,
    `_sleep` and `_clock`) through it at call time: a seam replaced after the client
    was made is the one used.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"
