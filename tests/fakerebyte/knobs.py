"""The knobs: every constructor keyword of FakeRebyte, and the kinds of values each takes
(the module docstring of tests/fake_rebyte.py says what each one does).
"""

from __future__ import annotations

import math
import re

from fakerebyte.faults import FAULT_KINDS

_KNOBS = frozenset(
    {
        "key",
        "host",
        "port",
        "upload_host",
        "upload_port",
        "provision_delay",
        "prompt_duration",
        "seed",
        "fault_rate",
        "fault_kinds",
        "fault_routes",
        "fault_after",
        "retry_after",
        "upload_url_ttl",
        "seed_tasks",
        "events_early_done",
        "events_drop_after",
        "events_drops",
        "events_drop_mode",
        "keepalive_interval",
        "upload_dir",
        "log_sink",
        "computer_ready_delay",
        "artifact_bytes",
        "artifacts_wrapper",
        "artifact_name_field",
        "artifact_download",
        "webhooks_wrapper",
        "task_view_extras",
        "list_status",
        "done_status_words",
        "task_read_lag",
        "events_route",
        "final_result_delay",
        "empty_final_result",
        "content_prompt_ids",
        "service_executor",
        "service_model",
        "submitted_equals_completed",
        "webhook_dedupe",
        "cancel_answer",
        "artifact_upload_wrapper",
        "upload_url_field",
        "public_key_field",
        "unknown_field",
        "agent_timeout",
    }
)
_CHOICES = {
    "events_drop_mode": ("reset", "eof"),
    "artifacts_wrapper": ("data", "artifacts", "bare"),
    "artifact_name_field": ("filename", "name"),
    "artifact_download": ("direct", "redirect"),
    "webhooks_wrapper": ("data", "webhooks"),
    "done_status_words": ("prompt", "task"),
    "cancel_answer": ("status", "empty", "ok", "204"),
    "artifact_upload_wrapper": ("data", "artifacts", "bare"),
    "upload_url_field": ("uploadUrl", "url"),
    "public_key_field": ("publicKey", "key"),
}
_BOOL_KNOBS = frozenset(
    {
        "fault_after",
        "events_early_done",
        "task_view_extras",
        "list_status",
        "events_route",
        "empty_final_result",
        "content_prompt_ids",
        "submitted_equals_completed",
        "webhook_dedupe",
        "unknown_field",
    }
)
_SECONDS_KNOBS = frozenset(
    {
        "computer_ready_delay",
        "artifact_bytes",
        "task_read_lag",
        "final_result_delay",
        "agent_timeout",
    }
)
_NAME_KNOBS = frozenset({"service_executor", "service_model"})
_ADDRESS_KNOBS = frozenset({"host", "port", "upload_host", "upload_port"})


def checked_knob(name: str, value):
    """The value a knob is set to (some are converted); ValueError when it is not one."""
    if name == "fault_kinds":
        value = tuple(value)
        bad = [kind for kind in value if kind not in FAULT_KINDS]
        if bad or not value:
            raise ValueError(f"unknown fault kind(s) {bad}; known: {FAULT_KINDS}")
    elif name == "fault_routes" and value is not None:
        value = [(method.upper(), re.compile(pattern)) for method, pattern in value]
    elif name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"{name} is one of {', '.join(_CHOICES[name])}")
    elif name in _SECONDS_KNOBS and not (
        isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf
    ):
        raise ValueError(f"{name} must be a finite number >= 0")
    elif name in _BOOL_KNOBS and not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False")
    elif (
        name in _NAME_KNOBS and value is not None and not (isinstance(value, str) and value.strip())
    ):
        raise ValueError(f"{name} must be None or a non-empty string")
    elif name == "retry_after":
        value = str(value)
    return value
