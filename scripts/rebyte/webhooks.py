"""The webhooks resource: register, list, read and remove webhooks; the signing public key."""

from __future__ import annotations

import logging
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Optional,
)

from .bodies import _first_string
from .checks import _check_text, _check_webhook_events, _check_webhook_url
from .constants import MAX_WEBHOOK_TEXT_CHARS, PUBLIC_KEY_FIELDS
from .errors import MalformedResponseError, RebyteError
from .failures import _scrub_error
from .resource import _Resource

logger = logging.getLogger("rebyte")


class Webhooks(_Resource):
    """`client.webhooks`: the organization's webhooks and the key that verifies them."""

    def create(
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
            for hook in self.list():
                if isinstance(hook, dict) and hook.get("url") == body["url"]:
                    return {**hook, "alreadyRegistered": True}
        try:
            return self._client._send_once_only(
                "POST",
                "/webhooks",
                body,
                fields=("id",),
                what="add webhook",
                operation="add_webhook",
                hint=(
                    "the webhook may have been added: check with webhooks.list() "
                    "before adding it again"
                ),
            )
        except RebyteError as error:
            if secret:
                _scrub_error(error, secret)
            raise

    def list(self) -> List[dict]:
        """The organization's webhooks (the answer's `data` or `webhooks`, or a bare list)."""
        answer = self._client._request("GET", "/webhooks")
        hooks = answer
        if isinstance(answer, dict):
            hooks = next((answer[k] for k in ("data", "webhooks") if k in answer), None)
        if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
            raise MalformedResponseError(
                "list webhooks: the answer holds no list of webhooks", status=200
            )
        return hooks

    def get(self, webhook_id: str) -> dict:
        path = self._client._path("/webhooks/{webhook_id}", webhook_id=webhook_id)
        return self._client._fetch(path, resource="webhook", fields=("id",), what="get webhook")

    def delete(self, webhook_id: str) -> None:
        """Remove a webhook. A retry that finds it already gone counts as success."""
        path = self._client._path("/webhooks/{webhook_id}", webhook_id=webhook_id)
        self._client._request(
            "DELETE", path, resource="webhook", expect_json=False, gone_is_done=True
        )

    def public_key(self) -> dict:
        """`{"publicKey": PEM, ...}`: the key that verifies Rebyte's webhook signatures (the
        answer's shape is undocumented: the key may come as publicKey, key or public_key)."""
        answer = self._client._request("GET", "/webhooks/public_key")
        key = _first_string(answer, PUBLIC_KEY_FIELDS)
        if key is None:
            raise MalformedResponseError(
                "get webhook public key: the answer holds no key "
                f"(looked for {', '.join(PUBLIC_KEY_FIELDS)})",
                status=None,
            )
        fields = answer.get("data") if isinstance(answer.get("data"), dict) else answer
        return {**fields, "publicKey": key}
