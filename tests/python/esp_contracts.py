"""An independent check of the ESP contracts: every JSON body an adapter sends and every
body a sandbox answers, validated against the provider's own definition of that endpoint.

HubSpot and Klaviyo: the typed models of their official Python SDKs (``hubspot-api-client``,
``klaviyo-api``), generated from the providers' OpenAPI definitions — strictly: every key
must be a field of the model (names exact, nothing extra), required fields present, types
right, enums respected, recursively. Endpoints an SDK has no model for (HubSpot's
communication preferences v4) and the providers that ship no typed models (Mailchimp,
SendGrid) have their shapes written here from the published API reference, cited next to
each. An exchange on an endpoint no table lists fails the check: the tables must cover
every endpoint the adapters call.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    request: Any  # parsed JSON body, or None
    status: int
    response: Any  # parsed JSON body, or None

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


def _json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return {"__not_json__": content[:200].decode(errors="replace")}


@contextlib.contextmanager
def recording(*destinations):
    """Record every request/response of the destinations' HTTP clients."""
    seen: list[Exchange] = []

    def on_response(response: httpx.Response) -> None:
        response.read()
        req = response.request
        seen.append(Exchange(req.method, req.url.path, req.url.query.decode(),
                             _json(req.content), response.status_code,
                             _json(response.content)))

    for dest in destinations:
        dest.client.event_hooks["response"].append(on_response)
    try:
        yield seen
    finally:
        for dest in destinations:
            dest.client.event_hooks["response"].remove(on_response)


# ------------------------------------------------------------------ HubSpot (SDK models)
def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


PRIMITIVES = {"str": str, "int": int, "float": (int, float), "bool": bool,
              "object": object}


def hubspot_problems(type_name: str, data: Any, package: str, path: str = "$") -> list[str]:
    """What in ``data`` does not fit the HubSpot SDK type ``type_name`` (a model class
    name of ``package``'s models, or ``list[...]`` / ``dict[str, ...]`` / a primitive)."""
    if data is None:
        return []
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(data, list):
            return [f"{path}: expected a list, got {type(data).__name__}"]
        return [p for i, v in enumerate(data)
                for p in hubspot_problems(m.group(1), v, package, f"{path}[{i}]")]
    m = re.fullmatch(r"dict\(str, (.+)\)|dict\[str, (.+)\]", type_name)
    if m:
        if not isinstance(data, dict):
            return [f"{path}: expected an object, got {type(data).__name__}"]
        inner = m.group(1) or m.group(2)
        return [p for k, v in data.items()
                for p in hubspot_problems(inner, v, package, f"{path}.{k}")]
    if type_name == "datetime":
        return [] if _is_datetime(data) else [f"{path}: {data!r} is not a date-time"]
    if type_name in PRIMITIVES:
        kind = PRIMITIVES[type_name]
        if type_name in ("int", "float") and isinstance(data, bool):
            return [f"{path}: expected {type_name}, got bool"]
        return [] if isinstance(data, kind) else [
            f"{path}: expected {type_name}, got {type(data).__name__} {data!r}"]
    models = importlib.import_module(f"{package}.models")
    cls = getattr(models, type_name)
    if not isinstance(data, dict):
        return [f"{path}: expected a {type_name} object, got {type(data).__name__}"]
    by_key = {v: k for k, v in cls.attribute_map.items()}
    problems = [f"{path}: {key!r} is not a field of {type_name} (fields: "
                f"{sorted(by_key)})" for key in data if key not in by_key]
    for key, value in data.items():
        if key in by_key:
            problems += hubspot_problems(cls.openapi_types[by_key[key]], value, package,
                                         f"{path}.{key}")
    config = importlib.import_module(f"{package}.configuration").Configuration()
    config.client_side_validation = True
    try:  # required fields and enums, as the SDK's own constructors check them
        cls(**{by_key[k]: v for k, v in data.items() if k in by_key},
            local_vars_configuration=config)
    except (ValueError, TypeError) as exc:
        problems.append(f"{path}: {type_name}: {exc}")
    return problems


# ------------------------------------------------------------------ Klaviyo (SDK models)
def _model_classes(annotation) -> list[type]:
    """The pydantic model classes an annotation can hold (through Optional/List/Dict/Union)."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out += _model_classes(arg)
    return out


def _is_list(annotation) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return True
    return any(_is_list(a) for a in typing.get_args(annotation)
               if typing.get_origin(annotation) is typing.Union)


def pydantic_keys(cls, data: Any, path: str = "$") -> list[str]:
    """Keys of ``data`` that are not fields of the pydantic model ``cls`` (by alias),
    recursively; a oneOf wrapper (``actual_instance``) must fit one of its schemas."""
    if data is None:
        return []
    fields = cls.model_fields
    if "actual_instance" in fields and hasattr(cls, "one_of_schemas"):
        options = [c for c in _model_classes(fields["actual_instance"].annotation)]
        fits = [c for c in options if not pydantic_keys(c, data, path)]
        return [] if fits or not options else [
            f"{path}: fits none of {cls.__name__}'s schemas "
            f"{[c.__name__ for c in options]}"]
    if not isinstance(data, dict):
        return [f"{path}: expected a {cls.__name__} object, got {type(data).__name__}"]
    by_alias = {(f.alias or name): f for name, f in fields.items()}
    problems = [f"{path}: {key!r} is not a field of {cls.__name__} (fields: "
                f"{sorted(by_alias)})" for key in data if key not in by_alias]
    for key, value in data.items():
        f = by_alias.get(key)
        if f is None:
            continue
        for inner in _model_classes(f.annotation)[:1]:
            if isinstance(value, list):
                for i, v in enumerate(value):
                    problems += pydantic_keys(inner, v, f"{path}.{key}[{i}]")
            elif isinstance(value, dict) and not (_is_list(f.annotation)):
                problems += pydantic_keys(inner, value, f"{path}.{key}")
    return problems


def klaviyo_problems(model: str, data: Any) -> list[str]:
    """What in ``data`` does not fit the klaviyo-api model ``model``: unknown keys
    anywhere, and whatever the model's own validation refuses (required fields, strict
    types, enums)."""
    from pydantic import ValidationError

    cls = getattr(importlib.import_module("openapi_client.models"), model)
    problems = pydantic_keys(cls, data)
    try:
        cls.from_dict(data)
    except (ValidationError, ValueError) as exc:
        problems.append(f"$: {model}: {str(exc).splitlines()[0:3]}")
    return problems


# ------------------------------------------------------------------ endpoint tables
@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # regex over the URL path
    request: str | None  # model of the JSON body sent (None: no body)
    responses: dict[int, str | None]  # status -> model of the body (None: no body)
    source: str  # where the definition comes from


def check_exchanges(exchanges: list[Exchange], endpoints: list[Endpoint],
                    problems_of) -> tuple[list[str], set[str]]:
    """(problems, endpoints covered): ``problems_of(model, data)`` validates one body."""
    problems: list[str] = []
    covered: set[str] = set()
    for ex in exchanges:
        matches = [e for e in endpoints
                   if e.method == ex.method and re.fullmatch(e.path, ex.path)]
        if not matches:
            problems.append(f"{ex}: no contract lists this endpoint")
            continue
        e = matches[0]
        covered.add(f"{e.method} {e.path}")
        if e.request is None:
            if ex.request is not None:
                problems.append(f"{ex}: sent a body the endpoint does not take")
        else:
            problems += [f"{ex} request {p}" for p in problems_of(e.request, ex.request)]
        if ex.status == 429:
            continue  # rate-limit bodies: checked by each sandbox's own test
        if ex.status not in e.responses:
            problems.append(f"{ex}: status {ex.status} is not one the endpoint answers "
                            f"({sorted(e.responses)})")
            continue
        model = e.responses[ex.status]
        if model is None:
            if ex.response is not None:
                problems.append(f"{ex}: answered a body where the endpoint has none")
        else:
            problems += [f"{ex} response {p}" for p in problems_of(model, ex.response)]
    return problems, covered
