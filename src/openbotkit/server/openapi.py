"""The OpenAPI 3.1 document of the API, derived from the registry's input and output models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from openbotkit.actions import Registry
from openbotkit.actions.base import ListInput

REF = "#/components/schemas/{model}"


def openapi_document(registry: Registry, version: str) -> dict[str, Any]:
    models = [(a.input, "validation") for a in registry]
    models += [(a.output, "serialization") for a in registry]
    refs, defs = models_json_schema(models, by_alias=True, ref_template=REF)  # type: ignore[arg-type]
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
                "schema": {"$ref": REF.format(model="StreamEvent")}
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
