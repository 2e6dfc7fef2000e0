"""Outbound webhooks: registrations only (_Webhook) and their routes (Webhooks, a mixin
of FakeRebyte); the local server delivers nothing.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from fakerebyte.base import Reply, _HttpError, _invalid, _Request

MAX_WEBHOOK_TEXT = 500
MAX_WEBHOOK_URL = 2048
MAX_WEBHOOKS = 3
WEBHOOK_EVENTS = ("task.created", "task.running", "task.completed", "task.failed", "task.canceled")


@dataclass
class _Webhook:
    id: str
    url: str
    events: list
    description: str | None
    secret: str | None
    created: float


class Webhooks:
    """The webhook routes (a mixin of FakeRebyte)."""

    def _webhook_json(self, hook: _Webhook) -> dict:
        return {
            "id": hook.id,
            "url": hook.url,
            "events": list(hook.events),
            "description": hook.description,
            "hasSecret": hook.secret is not None,
            "isActive": True,
            "createdAt": self._iso(hook.created),
            "lastTriggeredAt": None,
            "failureCount": 0,
        }

    def _add_webhook(self, request: _Request) -> Reply:
        body = request.json_object()
        url = body.get("url")
        if url is None:
            raise _invalid("url is required")
        if not isinstance(url, str) or len(url) > MAX_WEBHOOK_URL:
            raise _invalid(f"url must be a string of at most {MAX_WEBHOOK_URL} characters")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or any(ch.isspace() for ch in url):
            raise _invalid("url must be an https:// URL")
        events = body.get("events")
        if events is None:
            raise _invalid("events is required")
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(event, str) for event in events)
        ):
            raise _invalid("events must be a non-empty list of event names")
        unknown = [event for event in events if event not in WEBHOOK_EVENTS]
        if unknown:
            raise _invalid(
                f"unknown event(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENTS)}"
            )
        texts = {}
        for name in ("description", "secret"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_WEBHOOK_TEXT):
                raise _invalid(f"{name} must be a string of at most {MAX_WEBHOOK_TEXT} characters")
            texts[name] = value
        with self._lock:
            for hook in self._webhooks.values():
                if self.webhook_dedupe and hook.url == url:
                    return Reply.json(200, self._webhook_json(hook))
            if len(self._webhooks) >= MAX_WEBHOOKS:
                raise _HttpError(
                    400, "limit_exceeded", f"at most {MAX_WEBHOOKS} webhooks per organization"
                )
            hook = _Webhook(
                str(uuid.uuid4()),
                url,
                list(dict.fromkeys(events)),
                texts["description"],
                texts["secret"],
                self._now(),
            )
            self._webhooks[hook.id] = hook
            return Reply.json(201, self._webhook_json(hook))

    def _list_webhooks(self, request: _Request) -> Reply:
        with self._lock:
            entries = [self._webhook_json(hook) for hook in self._webhooks.values()]
        return Reply.json(200, {self.webhooks_wrapper: entries})

    def _live_webhook(self, webhook_id: str) -> _Webhook:
        hook = self._webhooks.get(webhook_id)
        if hook is None:
            raise _HttpError(404, "not_found", f"Webhook {webhook_id} not found.")
        return hook

    def _get_webhook(self, request: _Request, webhook_id: str) -> Reply:
        with self._lock:
            return Reply.json(200, self._webhook_json(self._live_webhook(webhook_id)))

    def _delete_webhook(self, request: _Request, webhook_id: str) -> Reply:
        with self._lock:
            self._live_webhook(webhook_id)
            del self._webhooks[webhook_id]
        return Reply(204)

    def _webhook_public_key(self, request: _Request) -> Reply:
        return Reply.json(200, {self.public_key_field: self._public_key, "algorithm": "ed25519"})

    @staticmethod
    def _make_public_key(seed) -> str:
        """A well-formed Ed25519 SubjectPublicKeyInfo PEM (the server signs nothing with it)."""
        raw = hashlib.sha256(f"fake-rebyte-webhook-key/{seed}".encode()).digest()
        der = bytes.fromhex("302a300506032b6570032100") + raw
        return (
            "-----BEGIN PUBLIC KEY-----\n"
            + base64.b64encode(der).decode()
            + "\n-----END PUBLIC KEY-----\n"
        )

    def webhook_secret(self, webhook_id: str) -> str | None:
        """The secret a webhook was registered with (the API never returns it)."""
        with self._lock:
            hook = self._webhooks.get(webhook_id)
            if hook is None:
                raise KeyError(f"no webhook {webhook_id}")
            return hook.secret
