"""Transport failures read from their exception chains: what broke, whether anything
was sent, and how to blank a secret in them.
"""

from __future__ import annotations

from typing import (
    Iterator,
)


def _exception_chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue  # ssl.SSLError.reason, for one, is a string
        seen.add(id(current))
        yield current
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))


def _scrub_error(error: BaseException, secret: str) -> None:
    """Blank `secret` wherever an error (and the errors behind it) could show it."""
    for current in _exception_chain(error):
        current.args = tuple(
            arg.replace(secret, "…redacted") if isinstance(arg, str) else arg
            for arg in current.args
        )
        for name in ("message", "hint"):
            value = getattr(current, name, None)
            if isinstance(value, str):
                setattr(current, name, value.replace(secret, "…redacted"))


def _never_connected(error: BaseException) -> bool:
    """True only when the TCP connection was never made, so the server cannot have acted."""
    names = {type(e).__name__ for e in _exception_chain(error)}
    return bool(
        names
        & {"ConnectTimeout", "NewConnectionError", "NameResolutionError", "ConnectTimeoutError"}
    )


def _caused_by_read_timeout(error: BaseException) -> bool:
    return any(
        type(e).__name__ in ("ReadTimeoutError", "ReadTimeout", "timeout", "TimeoutError")
        for e in _exception_chain(error)
    )


def _short_reason(error: BaseException) -> str:
    names = [type(e).__name__ for e in _exception_chain(error)]
    for known, text in (
        ("NameResolutionError", "host name not found"),
        ("ConnectionRefusedError", "connection refused"),
        ("NewConnectionError", "could not connect"),
        ("ConnectionResetError", "connection reset by the server"),
        ("RemoteDisconnected", "the server closed the connection without answering"),
        ("IncompleteRead", "the answer was cut off"),
        ("ChunkedEncodingError", "the answer was cut off"),
        ("SSLError", "TLS error"),
        ("ProtocolError", "the connection broke"),
    ):
        if known in names:
            return text
    return names[0] if names else "unknown error"


def _tls_detail(error: BaseException) -> str:
    """The innermost SSL error's own words, e.g. "CERTIFICATE_VERIFY_FAILED"."""
    import ssl

    for item in _exception_chain(error):
        if isinstance(item, ssl.SSLError):
            reason = getattr(item, "reason", None)
            if isinstance(reason, str) and reason:
                return reason.replace("_", " ").lower()
    return "TLS error"


def _urllib3_error() -> type:
    """urllib3's base error (what a raw read raises); requests always brings urllib3."""
    import urllib3  # noqa: PLC0415 - only after requests was imported

    return urllib3.exceptions.HTTPError
