"""The OpenAPI 3.1 document of the API, derived from the registry's input and output models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from openbotkit.actions import Action, Registry
from openbotkit.actions.base import ListInput

REF = "#/components/schemas/{model}"


def openapi_document(registry: Registry, version: str) -> dict[str, Any]:
    models = [(a.input, "validation") for a in registry]
    models += [(a.output, "serialization") for a in registry]
    refs, defs = models_json_schema(models, by_alias=True, ref_template=REF)  # type: ignore[arg-type]
    # Local-only fields (`path`) by input model: the registry's one mark of them.
    local = {
        refs[(a.input, "validation")]["$ref"].rsplit("/", 1)[-1]: a.local_fields for a in registry
    }
    for name, schema in defs.get("$defs", {}).items():
        _for_http(schema, local.get(name, frozenset()))
    paths: dict[str, dict[str, Any]] = {}
    for act in registry:
        in_ref = refs[(act.input, "validation")]
        out_ref = refs[(act.output, "serialization")]
        in_schema = defs["$defs"][in_ref["$ref"].rsplit("/", 1)[-1]]
        props: dict[str, Any] = in_schema.get("properties", {})
        required = set(in_schema.get("required", []))
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in act.path_params
        ]
        op: dict[str, Any] = {
            "operationId": act.name,
            "summary": act.description,
            "x-effect": act.effect.value,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": out_ref}},
                },
                "default": {
                    "description": "Error",
                    "content": {
                        "application/json": {"schema": {"$ref": REF.format(model="Error")}}
                    },
                },
            },
        }
        if "stream" in act.extensions or issubclass(act.input, ListInput):
            # Accept: application/jsonl streams events (or a list's items, every page).
            op["responses"]["200"]["content"]["application/jsonl"] = {
                "schema": {
                    "description": "The stream as the list of its lines (one JSON object each).",
                    "type": "array",
                    "items": {"$ref": REF.format(model="StreamEvent")},
                }
            }
        if act.method == "GET":
            params += [
                {"name": name, "in": "query", "required": name in required, "schema": schema}
                for name, schema in props.items()
                if name not in act.path_params
            ]
        else:
            op["requestBody"] = {
                "required": bool(required - set(act.path_params)),
                "content": {"application/json": {"schema": in_ref}},
            }
        op["parameters"] = params
        links = _links(act, registry)
        if links:
            op["responses"]["200"]["links"] = links
        paths.setdefault("/api/v1" + act.path, {})[act.method.lower()] = op
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "required": ["message", "code"],
        "properties": {
            "message": {"type": "string"},
            "code": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas["StreamEvent"] = {
        "description": "One line of an application/jsonl response.",
        "type": "object",
        "required": ["type", "data"],
        "properties": {"type": {"type": "string"}, "data": {"type": "object"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "openbotkit (ChatBotKit API v1 compatible)", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _for_http(schema: dict[str, Any], local_fields: frozenset[str]) -> None:
    """What the server accepts, not what the local connector does: fields naming local files
    (`local_fields`) are left out, and fields required over HTTP (`x-http-required`) marked so."""
    props: dict[str, Any] = schema.get("properties", {})
    local = [name for name in props if name in local_fields]
    for name in local:
        del props[name]
    required = [r for r in schema.get("required", []) if r not in local]
    required += [r for r in schema.pop("x-http-required", []) if r not in required]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)


def _new_id_param(act: Action) -> str | None:
    """The path parameter that names what `act` returns the id of: `/dataset/{datasetId}/record/
    create` -> recordId; `/file/{fileId}/upload` -> fileId (it answers the same id)."""
    segments = [s for s in act.path.split("/") if s]
    if segments[-1] == "create" and len(segments) >= 2:
        return segments[-2] + "Id"
    if act.path_params and act.method == "POST" and segments[-1] == "upload":
        return act.path_params[-1]
    return None


def _links(act: Action, registry: Registry) -> dict[str, Any]:
    """OpenAPI links from an operation that creates something to every operation addressed by
    its new id (plus the ids its own path already had), so a stateful run reaches them."""
    new = _new_id_param(act)
    if new is None:
        return {}
    known = set(act.path_params)
    links: dict[str, Any] = {}
    for target in registry:
        params = set(target.path_params)
        if target is act or new not in params or not params <= known | {new}:
            continue
        links[target.name] = {
            "operationId": target.name,
            "parameters": {
                p: "$response.body#/id" if p == new else f"$request.path.{p}"
                for p in target.path_params
            },
        }
    return links
