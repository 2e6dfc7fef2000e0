"""Check requests and responses against references/openapi.yaml.

Test support only: it reads the spec and nothing of the client, so that the
client, the local server and the spec are three independent witnesses. The
spec is OpenAPI 3.1, whose schemas are plain JSON Schema 2020-12, so
`jsonschema` validates them directly; `$ref`s resolve through a `referencing`
registry that holds the whole spec document.

    validate_request("POST", "/v1/tasks", body={"prompt": "hi"})
    validate_response("GET", "/v1/tasks/abc", 200, task_json)
    validate_response("GET", "/v1/tasks/abc", 200, task_json, strict=True, knobs={...})
    operations()  # [("POST", "/files"), ("POST", "/tasks"), ...]

Response schemas are tolerant (a real server may add fields). strict=True checks the
local server instead: against a copy of the spec where every object schema is closed
(`unevaluatedProperties: false`, so nested prompts, list rows and event data too) and
where whatever is marked `x-knob: {knob: value}` is kept only when `knobs` (the local
server's knob values) has that value; `x-adds-to` schemas add their fields to the named
schemas when their knob is on. The spec's `x-unknown-field` names the knob-only field
that may then appear in any object.

Failures raise AssertionError with the method, path and the schema complaint.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "references" / "openapi.yaml"
_SPEC_URI = "urn:rebyte-openapi"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ABSENT = object()

# Format checks of our own: jsonschema's date-time check needs an optional
# package, and we want the same answer on every machine.
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return False
    # fromisoformat in 3.9 takes neither "Z" nor more than 6 fraction digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    datetime.fromisoformat(text)
    return True


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and " " not in value


@functools.cache
def spec() -> dict:
    """The parsed spec (cached: tests call this a lot)."""
    with open(SPEC_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def knob_names() -> frozenset:
    """Every knob the spec's x-knob markers (and x-unknown-field) name."""
    names = set(spec().get("x-unknown-field", {}).get("x-knob", {}))
    for _, node in _nodes(spec()):
        names.update(node.get("x-knob", {}))
    return frozenset(names)


def _nodes(node, pointer=""):
    """Every (pointer, dict) inside a parsed document."""
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            yield from _nodes(value, f"{pointer}/{_escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{pointer}/{index}")


def _knob_on(node: object, knobs: dict) -> bool:
    """False for a node marked x-knob whose knob values `knobs` does not have."""
    if not isinstance(node, dict) or "x-knob" not in node:
        return True
    return all(knobs.get(name, _ABSENT) == value for name, value in node["x-knob"].items())


def _prune(node: object, knobs: dict) -> None:
    """Drop every x-knob entry (property, branch, response) whose knob is not on."""
    if isinstance(node, dict):
        for key in [key for key, value in node.items() if not _knob_on(value, knobs)]:
            del node[key]
        for value in node.values():
            _prune(value, knobs)
    elif isinstance(node, list):
        node[:] = [value for value in node if _knob_on(value, knobs)]
        for value in node:
            _prune(value, knobs)


def _close(node: object, parent: str | None = None) -> None:
    """unevaluatedProperties: false on each object schema (not in if/then/else/not)."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and parent not in (
            "if",
            "then",
            "else",
            "not",
            "properties",
        ):
            node.setdefault("unevaluatedProperties", False)
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for item in value.values():
                    _close(item, None)
            else:
                _close(value, key)
    elif isinstance(node, list):
        for value in node:
            _close(value, parent)


@functools.cache
def _strict_spec(knob_items: tuple) -> dict:
    """The spec as the local server must follow it with these knob values."""
    knobs = dict(knob_items)
    document = copy.deepcopy(spec())
    schemas = document["components"]["schemas"]
    for schema in list(schemas.values()):
        if "x-adds-to" in schema and _knob_on(schema, knobs):
            for target in schema["x-adds-to"]:
                schemas[target]["properties"].update(copy.deepcopy(schema["properties"]))
    _prune(document, knobs)
    _close(document["components"])
    _close(document["paths"])
    return document


def _knob_key(knobs: dict | None) -> tuple:
    """A hashable, canonical form of the knob values the spec cares about."""
    names = knob_names()
    return tuple(sorted((name, value) for name, value in (knobs or {}).items() if name in names))


def _document(key: tuple | None) -> dict:
    return spec() if key is None else _strict_spec(key)


@functools.cache
def _registry(key: tuple | None = None) -> Registry:
    resource = Resource.from_contents(_document(key), default_specification=DRAFT202012)
    return Registry().with_resource(_SPEC_URI, resource)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(*tokens: object) -> str:
    return "".join("/" + _escape(str(token)) for token in tokens)


def _lookup(pointer: str, key: tuple | None = None) -> object:
    node: object = _document(key)
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _follow(pointer: str, key: tuple | None = None) -> tuple[object, str]:
    """Resolve OpenAPI-level $refs (responses, parameters, headers) by hand."""
    node = _lookup(pointer, key)
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are supported: {ref}"
        pointer = ref[1:]
        node = _lookup(pointer, key)
    return node, pointer


@functools.cache
def _validator(pointer: str, key: tuple | None = None) -> Draft202012Validator:
    """A validator for the schema at `pointer`, with the spec as its base document.

    Referring to the schema by its place in the spec (rather than copying it
    out) keeps every "#/components/..." inside it resolvable.
    """
    schema = {"$ref": f"{_SPEC_URI}#{pointer}"}
    return Draft202012Validator(schema, registry=_registry(key), format_checker=_FORMATS)


def _check(pointer: str, instance: object, what: str, key: tuple | None = None) -> None:
    errors = sorted(_validator(pointer, key).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        lines = []
        for error in errors[:5]:
            where = "/".join(str(part) for part in error.absolute_path) or "(top)"
            lines.append(f"  at {where}: {error.message}")
        shown = json.dumps(instance)[:300] if not isinstance(instance, str) else instance[:300]
        strictly = " (strictly: no field it does not list)" if key is not None else ""
        raise AssertionError(
            f"{what} does not match the spec{strictly}:\n"
            + "\n".join(lines)
            + f"\n  instance: {shown}"
        )


def schema_pointer(name: str) -> str:
    """Pointer of a component schema, e.g. schema_pointer("Task")."""
    assert name in spec()["components"]["schemas"], f"no component schema {name!r}"
    return _pointer("components", "schemas", name)


def validate_component(name: str, instance: object) -> None:
    """Validate `instance` against components/schemas/<name>."""
    _check(schema_pointer(name), instance, f"{name} instance")


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, template) pair in the spec, e.g. ("GET", "/tasks/{id}")."""
    return [
        (method.upper(), template)
        for template, item in spec()["paths"].items()
        for method in _METHODS
        if method in item
    ]


def _split(path: str) -> tuple[str, dict]:
    """Reduce a URL or path to a spec-relative path and its query."""
    parts = urlsplit(path)
    relative = parts.path
    base = urlsplit(spec()["servers"][0]["url"]).path.rstrip("/")  # "/v1"
    if relative == base or relative.startswith(base + "/"):
        relative = relative[len(base) :] or "/"
    return relative, dict(parse_qsl(parts.query, keep_blank_values=True))


def _match(relative: str) -> tuple[str, dict] | None:
    """The template matching a concrete path, with its path parameters."""
    candidates = []
    for template in spec()["paths"]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        found = re.fullmatch(regex, relative)
        if found:
            candidates.append((template.count("{"), template, found.groupdict()))
    if not candidates:
        return None
    candidates.sort()  # templates with fewer parameters are more specific
    return candidates[0][1], candidates[0][2]


def template_of(path: str) -> str:
    """The spec's template for a concrete path, e.g. "/v1/tasks/abc" -> "/tasks/{id}"."""
    matched = _match(_split(path)[0])
    assert matched, f"no path in the spec matches {path!r}"
    return matched[0]


def _parameters(template: str, method: str) -> list[tuple[dict, str]]:
    """Parameters of an operation (path-level ones first), each with its pointer."""
    found = []
    for base in (_pointer("paths", template), _pointer("paths", template, method)):
        listed = _lookup(base).get("parameters", [])
        for index in range(len(listed)):
            found.append(_follow(f"{base}/parameters/{index}"))
    return found


def _coerce(raw: object, schema: dict) -> object:
    """Turn a query-string value into the type its schema asks for, if it can."""
    if not isinstance(raw, str):
        return raw
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw  # leave it a string: the schema will say why it is wrong
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def _operation(method: str, path: str) -> tuple[str, str, dict, dict]:
    relative, query = _split(path)
    matched = _match(relative)
    assert matched, f"{method} {path}: no path in the spec matches {relative!r}"
    template, path_params = matched
    verb = method.lower()
    assert verb in _lookup(_pointer("paths", template)), (
        f"{method} {path}: the spec has no {method.upper()} on {template}"
    )
    return template, verb, path_params, query


def validate_request(
    method: str,
    path: str,
    body: object = None,
    query: dict | None = None,
    content_type: str = "application/json",
) -> None:
    """Check what a client would send: path, query parameters and body.

    Query values may be strings (as on the wire) or already typed. Unknown
    query parameters and bodies where none belongs are errors: the spec is
    strict about requests. A body of another `content_type` (a multipart
    upload) is checked for being one the spec takes, not field by field:
    pass it as {"file": [bytes, ...]}.
    """
    template, verb, path_params, url_query = _operation(method, path)
    what = f"{method.upper()} {path}"
    query = {**url_query, **(query or {})}
    seen = set()
    for param, pointer in _parameters(template, verb):
        name, where = param["name"], param["in"]
        if where == "path":
            _check(pointer + "/schema", path_params[name], f"{what} path parameter {name}")
        elif where == "query":
            seen.add(name)
            value = query.get(name, _ABSENT)
            if value is _ABSENT:
                assert not param.get("required"), f"{what}: query parameter {name} is required"
                continue
            _check(
                pointer + "/schema",
                _coerce(value, param["schema"]),
                f"{what} query parameter {name}",
            )
    unknown = sorted(set(query) - seen)
    assert not unknown, f"{what}: query parameters not in the spec: {unknown}"

    op_pointer = _pointer("paths", template, verb)
    if "requestBody" not in _lookup(op_pointer):
        assert body is None, f"{what}: the spec defines no request body"
        return
    request_body, rb_pointer = _follow(op_pointer + "/requestBody")
    if body is None:
        assert not request_body.get("required"), f"{what}: a request body is required"
        return
    assert content_type in request_body["content"], (
        f"{what}: the spec takes no {content_type} body ({sorted(request_body['content'])})"
    )
    if content_type != "application/json":
        schema = request_body["content"][content_type]["schema"]
        assert isinstance(body, dict) and set(schema.get("required", [])) <= set(body), (
            f"{what}: {content_type} body lacks {schema.get('required')}"
        )
        return
    _check(
        f"{rb_pointer}/content/{_escape('application/json')}/schema", body, f"{what} request body"
    )


def parse_sse(text: str) -> list[tuple[str, str]]:
    """Split a server-sent-event stream into (event name, data) pairs.

    Follows the SSE rules a browser uses: comment lines start with ":", a
    blank line ends a message, several data lines join with newlines, and a
    message without an event line is called "message".
    """
    messages = []
    event, data = "", []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data:
                messages.append((event or "message", "\n".join(data)))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    return messages


def validate_sse(
    text: str, what: str = "event stream", *, strict: bool = False, knobs: dict | None = None
) -> list[tuple[str, dict]]:
    """Validate each message of an events stream; returns (name, parsed data).

    strict and knobs: as for validate_response.
    """
    key = _knob_key(knobs) if strict else None
    media_pointer = _pointer(
        "paths", "/tasks/{id}/events", "get", "responses", "200", "content", "text/event-stream"
    )
    known = _lookup(media_pointer, key)["x-sse-events"]
    parsed = []
    for index, (name, data) in enumerate(parse_sse(text)):
        assert name in known, f"{what}: message {index} has unknown event name {name!r}"
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise AssertionError(
                f"{what}: message {index} data is not JSON: {data[:200]!r}"
            ) from exc
        checked = _without_unknown_field(value, knobs) if strict else value
        _check(
            f"{media_pointer}/x-sse-events/{_escape(name)}",
            checked,
            f"{what} message {index} ({name})",
            key,
        )
        parsed.append((name, value))
    return parsed


def _without_unknown_field(value: object, knobs: dict | None) -> object:
    """The value without the spec's x-unknown-field, when its knob is on (else as it is)."""
    marker = spec().get("x-unknown-field")
    if marker is None or not _knob_on(marker, knobs or {}):
        return value
    if isinstance(value, dict):
        return {
            name: _without_unknown_field(item, knobs)
            for name, item in value.items()
            if name != marker["name"]
        }
    if isinstance(value, list):
        return [_without_unknown_field(item, knobs) for item in value]
    return value


def _response_for(
    method: str, path: str, status: int, key: tuple | None = None
) -> tuple[dict, str, str]:
    """The response object the spec gives for this call and status."""
    relative, _ = _split(path)
    matched = _match(relative)
    # Unknown paths and methods are answered by the shared 404 and 405.
    if matched is None:
        assert status == 404, f"{method} {path}: no such path in the spec, yet status {status}"
        return (*_follow(_pointer("components", "responses", "NotFound"), key), "unknown path")
    template, _ = matched
    verb = method.lower()
    if verb not in _lookup(_pointer("paths", template)):
        assert status == 405, f"{method} {path}: no {method.upper()} on {template}, yet {status}"
        return (*_follow(_pointer("components", "responses", "MethodNotAllowed"), key), template)
    responses_pointer = _pointer("paths", template, verb, "responses")
    responses = _lookup(responses_pointer, key)
    for code in (str(status), f"{status // 100}XX", "default"):
        if code in responses:
            return (*_follow(f"{responses_pointer}/{_escape(code)}", key), template)
    strictly = " (strictly: on these knobs)" if key is not None else ""
    raise AssertionError(
        f"{method.upper()} {path}: status {status} is not in the spec"
        f"{strictly} (documented: {sorted(responses)})"
    )


def validate_response(
    method: str,
    path: str,
    status: int,
    body: object,
    headers: dict | None = None,
    content_type: str | None = None,
    *,
    strict: bool = False,
    knobs: dict | None = None,
) -> None:
    """Check a server answer: status documented, body shape, required headers.

    `body` is the parsed JSON (dict or list), a str for non-JSON bodies (an
    events stream, a proxy's HTML page), or None / "" / b"" for no body.
    `content_type` picks the media type when given; otherwise a str body
    means the first non-JSON media type the spec lists.

    strict=True: no field (at any depth) that the spec does not list, and nothing marked
    x-knob unless `knobs` (knob name -> value, as the local server has them) turns it on.
    """
    key = _knob_key(knobs) if strict else None
    response, pointer, template = _response_for(method, path, status, key)
    what = f"{method.upper()} {path} -> {status}"

    if headers is not None:
        lowered = {name.lower(): value for name, value in headers.items()}
        for name in response.get("headers", {}):
            header, header_pointer = _follow(f"{pointer}/headers/{_escape(name)}", key)
            value = lowered.get(name.lower())
            if value is None:
                assert not header.get("required"), f"{what}: header {name} is required"
                continue
            _check(header_pointer + "/schema", value, f"{what} header {name}", key)

    content = response.get("content")
    if not content:
        assert body in (None, "", b""), f"{what}: the spec says no body, got {body!r:.200}"
        return
    assert body not in (None, "", b""), f"{what}: the spec expects a body, got none"
    if content_type is not None:
        media = content_type.split(";")[0].strip().lower()
    elif isinstance(body, (str, bytes)):
        media = next((m for m in content if m != "application/json"), "application/json")
    else:
        media = "application/json"
    if media not in content and "*/*" in content:
        media = "*/*"  # any bytes (a download)
    assert media in content, f"{what}: media type {media} not in the spec ({sorted(content)})"
    if isinstance(body, bytes):
        binary = content[media].get("schema", {}).get("format") == "binary"
        body = body.decode("latin-1" if binary else "utf-8")
    media_pointer = f"{pointer}/content/{_escape(media)}"
    if media == "application/json" and isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise AssertionError(f"{what}: body is not JSON: {body[:200]!r}") from exc
    if "x-sse-events" in content[media]:
        validate_sse(body, what, strict=strict, knobs=knobs)
        return
    if strict:
        body = _without_unknown_field(body, knobs)
    _check(media_pointer + "/schema", body, f"{what} body", key)
