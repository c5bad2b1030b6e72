"""The API contract: ``/openapi.json`` documents every route's request and response.

Walks the document served by the live server and fails, listing every offending operation,
on:

- an operation without a 2xx response whose content has a typed schema (a binary media
  type with ``format: binary`` is fine; ``{}`` or a bare ``object`` is not);
- a parameter (query, path, header, cookie) or a request-body property without a
  description, or without an example;
- a request body the route reads that the document does not describe;
- error answers not documented as ``ErrorBody``.

It also checks that the answers really are what the document says for the routes that
run on an empty database, and that every error answer has the ``ErrorBody`` shape.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.main import create_app
from api.models.common import ApiModel

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# a route that reads its body by hand
_READS_BODY = re.compile(r"\brequest\.(json|body|form|stream)\(")


@pytest.fixture(scope="module")
def openapi(http) -> dict[str, Any]:
    r = http.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _typed(doc: dict[str, Any], schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``schema`` says something about the answer (not ``{}``, not a bare object)."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return True
        return _typed(doc, _resolve(doc, schema), seen | {schema["$ref"]})
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            parts = [s for s in schema[key] if s.get("type") != "null"]
            return bool(parts) and all(_typed(doc, s, seen) for s in parts)
    kind = schema.get("type")
    if kind == "array":
        return _typed(doc, schema.get("items", {}), seen)
    if kind == "object" or "properties" in schema:
        extra = schema.get("additionalProperties")
        return bool(schema.get("properties")) or isinstance(extra, dict) and bool(extra)
    return kind in ("string", "integer", "number", "boolean")


def _response_problem(doc: dict[str, Any], op: dict[str, Any]) -> str | None:
    ok = {code: r for code, r in op.get("responses", {}).items() if code.startswith("2")}
    if not ok:
        return "no 2xx response"
    for code, response in ok.items():
        if code == "204":
            return None
        for media, content in (response.get("content") or {}).items():
            schema = content.get("schema")
            if schema is None:
                continue
            if schema.get("format") == "binary" or _typed(doc, schema):
                return None
            return f"{code} {media}: untyped schema {schema}"
    return "no 2xx response with a content schema"


def _has_example(doc: dict[str, Any], item: dict[str, Any]) -> bool:
    """Whether a parameter or a property shows an example (a nested model or a list of
    them needs none of its own: its fields are checked one by one)."""
    if _is_model(doc, item):
        return True
    schema = item.get("schema", {})
    return any(k in item for k in ("example", "examples")) or any(
        k in schema for k in ("example", "examples", "enum", "const", "default")
    )


def _is_model(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return _is_model(doc, _resolve(doc, schema))
    if schema.get("type") == "array":
        return _is_model(doc, schema.get("items", {}))
    for key in ("anyOf", "oneOf", "allOf"):
        parts = [s for s in schema.get(key, []) if s.get("type") != "null"]
        if parts and all(_is_model(doc, s) for s in parts):
            return True
    return bool(schema.get("properties"))


def _body_properties(
    doc: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of a request-body schema, nested models and unions included."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen.add(schema["$ref"])
        model = schema["$ref"].rsplit("/", 1)[-1]
        yield from _body_properties(doc, _resolve(doc, schema), f"{where}<{model}>", seen)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _body_properties(doc, sub, where, seen)
    if schema.get("type") == "array":
        yield from _body_properties(doc, schema.get("items", {}), where, seen)
    for name, prop in (schema.get("properties") or {}).items():
        yield f"{where}.{name}", prop
        yield from _body_properties(doc, prop, f"{where}.{name}", seen)


def _request_fields(
    doc: dict[str, Any], op: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for p in op.get("parameters", []):
        yield f"{p['in']} {p['name']}", p
    for media, content in (op.get("requestBody", {}).get("content") or {}).items():
        schema = content.get("schema", {})
        if schema.get("format") == "binary":
            continue
        yield from _body_properties(doc, schema, f"body({media})", set())


def _described(field: dict[str, Any]) -> bool:
    return bool(field.get("description") or field.get("schema", {}).get("description"))


def _report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)


def test_every_operation_has_a_typed_success_response(openapi):
    problems = []
    for path, method, op in _operations(openapi):
        problem = _response_problem(openapi, op)
        if problem:
            problems.append(f"{method.upper()} {path}: {problem}")
    assert not problems, _report(problems)


def test_every_request_field_is_described(openapi):
    problems = [
        f"{method.upper()} {path}: {name} has no description"
        for path, method, op in _operations(openapi)
        for name, field in _request_fields(openapi, op)
        if not _described(field)
    ]
    assert not problems, _report(problems)


def test_every_request_field_has_an_example(openapi):
    problems = [
        f"{method.upper()} {path}: {name} has no example"
        for path, method, op in _operations(openapi)
        for name, field in _request_fields(openapi, op)
        if not _has_example(openapi, field)
    ]
    assert not problems, _report(problems)


def test_every_request_body_is_documented(openapi):
    """A route that reads its body must declare it (a model, ``Form`` fields or
    ``openapi_extra``), so that the body appears in the document."""
    problems = []
    for route in create_app().routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        if not _READS_BODY.search(inspect.getsource(route.endpoint)):
            continue
        path_item = openapi["paths"].get(route.path, {})
        for method in route.methods:
            op = path_item.get(method.lower(), {})
            if not op.get("requestBody", {}).get("content"):
                problems.append(f"{method} {route.path}: reads a body the document omits")
    assert not problems, _report(problems)


def _own_error_format(path: str, code: str) -> bool:
    """Answers that follow another document than ``ErrorBody``: Open311 GeoReport v2 errors
    (a list of ``code``/``description``) and ``/health`` (its report, also when 503)."""
    return path.startswith("/open311/") or (path == "/health" and code == "503")


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            if field.annotation is not annotation:
                yield from _models(field.annotation)
    for arg in get_args(annotation):
        yield from _models(arg)


def test_answer_models_follow_the_one_encoder():
    """Answer models subclass ``ApiModel``, so their JSON follows ``api.json.jsonable``
    (datetimes in UTC, NaN as null) like every other answer."""
    problems = set()
    for route in create_app().routes:
        if isinstance(route, APIRoute) and route.response_model is not None:
            for model in _models(route.response_model):
                if not issubclass(model, ApiModel):
                    problems.add(f"{route.path}: {model.__module__}.{model.__qualname__}")
    assert not problems, _report(sorted(problems))


def test_errors_are_documented_as_error_body(openapi):
    """Error answers are ``ErrorBody`` (FastAPI's 422 ``HTTPValidationError`` is never sent)."""
    assert "ErrorBody" in openapi["components"]["schemas"]
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    problems = []
    for path, method, op in _operations(openapi):
        where = f"{method.upper()} {path}"
        if op.get("parameters") or op.get("requestBody"):
            if "400" not in op.get("responses", {}):
                problems.append(f"{where}: invalid input (400) not documented")
        for code, response in op.get("responses", {}).items():
            if code[0] not in "45":
                continue
            schemas = [c.get("schema", {}) for c in (response.get("content") or {}).values()]
            if _own_error_format(path, code):
                if not schemas or not all(_typed(openapi, s) for s in schemas):
                    problems.append(f"{where}: {code} has no typed schema")
            elif not any(s.get("$ref", "").endswith("/ErrorBody") for s in schemas):
                problems.append(f"{where}: {code} is not an ErrorBody")
    assert not problems, _report(problems)


def test_the_document_is_served_as_utf8_json(http):
    r = http.get("/openapi.json")
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "geogrid"


def test_answers_match_the_document(http, openapi):
    """The routes that answer on an empty database return what the document says."""
    health = http.get("/health")
    assert health.status_code == 200
    body = health.json()
    schema = _resolve(
        openapi,
        openapi["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ],
    )  # noqa: E501
    assert set(body) <= set(schema["properties"])
    assert body["status"] == "healthy" and body["published_version"] is None
    versions = http.get("/boundaries/versions")
    assert versions.status_code == 200 and versions.json() == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "parameter"),
    [
        ("get", "/boundaries/town", {}, 400, "level"),
        ("get", "/boundaries/grid", {"params": {"bbox": "1,2,3"}}, 400, "bbox"),
        ("get", "/boundaries/grid", {"params": {"version": "three"}}, 400, "version"),
        ("get", "/boundaries/grid", {}, 404, None),
        ("get", "/no/such/path", {}, 404, None),
        ("delete", "/health", {}, 405, None),
    ],
)
def test_error_answers_are_error_bodies(http, method, path, kwargs, status, parameter):
    r = http.request(method.upper(), path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    if parameter:
        assert body["error"] == "InvalidInput" and body["parameter"] == parameter


def test_malformed_json_is_an_error_body(http, openapi):
    """A body that is not JSON is a 400 naming ``body`` (on the anonymous sign-in route, so
    no credential check answers first)."""
    op = openapi["paths"]["/session"]["post"]
    assert "application/json" in op["requestBody"]["content"]
    r = http.post("/session", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == "body"
