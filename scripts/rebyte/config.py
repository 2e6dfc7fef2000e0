"""Configuration from arguments and the environment: the key, the base URL, the timeouts.

Also the URL helpers that keep secrets out of messages.
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
import re
import time
import urllib.parse
from typing import (
    Any,
    Optional,
)

from .constants import API_KEY_ENV, API_KEY_URL, DEFAULT_BASE_URL, MAX_TIMEOUT_SECONDS
from .errors import ConfigurationError

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")


def _env_float(name: str, default: float, *, allow_zero: bool = False) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not (0 <= value if allow_zero else 0 < value) or not value <= MAX_TIMEOUT_SECONDS:
        least = "0 or more" if allow_zero else "more than 0"
        raise ConfigurationError(  # nan fails both tests
            f"{name} must be {least} and at most {MAX_TIMEOUT_SECONDS:g} seconds, got {raw!r}"
        )
    return value


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigurationError(f"{name} must be 0 or more, got {raw!r}")
    return value


def _check_positive(
    value: Any, what: str, error: type = ConfigurationError, *, allow_zero: bool = False
) -> float:
    low_ok = (lambda v: 0 <= v) if allow_zero else (lambda v: 0 < v)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (low_ok(value) and value <= MAX_TIMEOUT_SECONDS)
    ):
        kind = "a number of seconds, 0 or more" if allow_zero else "a positive number of seconds"
        raise error(f"{what} must be {kind}, at most {MAX_TIMEOUT_SECONDS:g}, got {value!r}")
    return float(value)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(url: Any) -> str:
    """Accept https anywhere, plain http only on loopback: the key must not travel in clear."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("base URL is empty")
    text = url.strip()
    shown = _without_secrets(text)  # a key pasted into the URL must not show in the error
    try:
        parts = urllib.parse.urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(f"malformed base URL: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"malformed base URL: {shown!r} (expected e.g. {DEFAULT_BASE_URL})"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"base URL must not carry a query, fragment or credentials: {shown!r}"
        )
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"refusing plain http:// to {host}: the API key would cross the network "
            "unencrypted; use https:// (http:// is allowed only for loopback hosts)"
        )
    return text.rstrip("/")


def _check_api_key(key: Any) -> str:
    if key is None or (isinstance(key, str) and not key.strip()):
        raise ConfigurationError(
            f"no API key: set {API_KEY_ENV} (get a key at {API_KEY_URL}, then "
            f'export {API_KEY_ENV}="rbk_...")'
        )
    if not isinstance(key, str) or _CONTROL_OR_SPACE.search(key.strip()):
        raise ConfigurationError(
            f"the API key contains spaces or control characters; copy it again from {API_KEY_URL}"
        )
    if not _PRINTABLE_ASCII.fullmatch(key.strip()):
        # A zero-width space, U+2028 or an emoji pasted along, or bytes that are not UTF-8:
        # no key holds them, and an HTTP header could not carry them.
        raise ConfigurationError(
            "the API key contains characters no key has (invisible or non-ASCII ones); "
            f"copy it again from {API_KEY_URL}"
        )
    return key.strip()


def _redact_key(key: str) -> str:
    return f"{key[:4]}…redacted" if len(key) > 8 else "…redacted"


def _without_secrets(url: str) -> str:
    """The URL as text, its user info, query and fragment (where secrets hide) blanked."""
    text = re.sub(r"(?<=//)[^/?#]*@", "…@", url, count=1)
    return re.sub(r"[?#].*", lambda match: match.group()[0] + "…", text, count=1, flags=re.DOTALL)


def _ca_bundle_from_env() -> Optional[str]:
    """The CA bundle a TLS-inspecting proxy's users point to, as requests would read it."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(name)
        if value and value.strip():
            return value.strip()
    return None


def _without_query(url: str) -> str:
    """Drop the query: an upload URL's signature is a credential too."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Parse Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _import_requests() -> Any:
    try:
        import requests  # noqa: PLC0415 - kept lazy so that start-up stays fast
    except ImportError:
        raise ImportError(
            "the Rebyte client needs the 'requests' package: python3 -m pip install requests"
        ) from None
    return requests
