"""Injected faults: the kinds (FAULT_KINDS), the rules inject() scripts (_FaultRule), the
canned answers a fault gives, and the choice of a fault for each request (Faults, a mixin
of FakeRebyte). The HTTP handler (fakerebyte.http) sends them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fakerebyte.base import Reply, _error, _proxy_page, _xml_error
from fakerebyte.routes import _success_status

FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "502-html",
    "503-html",
    "reset",
    "stall",
    "empty-200",
    "html-200",
    "truncated-json",
    "short-body",
    "wrong-shape",
    "204",
    "403-expired",
)
DEFAULT_RANDOM_FAULTS = ("429", "500", "502", "503", "reset")


def _fault_success_status(real: Reply | None, method: str, path: str) -> int:
    """The 2xx a faulty success answer claims: the real one's, else the route's."""
    if real is not None and real.status in (200, 201):
        return real.status
    return _success_status(method, path)


def _fault_reply(fault: str, real: Reply | None, method: str, path: str, retry_after: str) -> Reply:
    """What a fault answers instead of `real` (None when the request was not processed)."""
    success = _fault_success_status(real, method, path)
    if fault == "429":
        return _error(
            429,
            "rate_limited",
            "Too many requests; slow down.",
            headers={"Retry-After": retry_after},
        )
    if fault in ("500", "502", "503"):
        return _error(int(fault), "internal_error", f"Injected {fault}.")
    if fault in ("502-html", "503-html"):
        return _proxy_page(int(fault[:3]))
    if fault == "empty-200":
        return Reply(200, b"", "application/json")
    if fault == "html-200":
        return Reply(
            200,
            b"<!DOCTYPE html><html><body>Sign in to continue</body></html>",
            "text/html; charset=utf-8",
        )
    if fault == "truncated-json":
        body = real.body if real is not None and real.body else b'{"id": "0123456789abcdef"}'
        return Reply(success, body[: max(1, len(body) // 2)], "application/json")
    if fault == "wrong-shape":
        return Reply.json(success, ["unexpected", "shape"])
    if fault == "204":
        return Reply(204)
    if fault == "403-expired":
        return _xml_error(403, "ExpiredToken", "The provided token has expired.")
    raise ValueError(f"fault {fault!r} has no canned answer")


@dataclass
class _FaultRule:
    method: str
    path: re.Pattern
    fault: str
    remaining: int
    after: bool

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and bool(self.path.fullmatch(path))


class Faults:
    """Scripted and random faults (a mixin of FakeRebyte)."""

    def inject(
        self, method: str, path_regex: str, fault: str, *, count: int = 1, after: bool = False
    ) -> None:
        """Answer the next `count` requests matching method (or "*") and path with `fault`.

        after=False: the fault replaces the processing (nothing happens on the server);
        after=True: the request is processed (a task IS created), then the fault answers.
        """
        if fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault {fault!r}; known: {FAULT_KINDS}")
        rule = _FaultRule(method.upper(), re.compile(path_regex), fault, count, after)
        with self._lock:
            self._scripted.append(rule)

    def clear_faults(self) -> None:
        """Forget the scripted faults not used yet."""
        with self._lock:
            self._scripted.clear()

    def _choose_fault(self, method: str, path: str) -> tuple:
        """(fault or None, after) for this request: scripted ones first, then random ones."""
        with self._lock:
            for rule in self._scripted:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._scripted.remove(rule)
                    return rule.fault, rule.after
            if self.fault_rate > 0 and self._random_faults_apply(method, path):
                if self._rng.random() < self.fault_rate:
                    return self._rng.choice(self.fault_kinds), self.fault_after
        return None, False

    def _random_faults_apply(self, method: str, path: str) -> bool:
        if self.fault_routes is None:
            return True
        return any(
            route_method in ("*", method) and pattern.fullmatch(path)
            for route_method, pattern in self.fault_routes
        )
