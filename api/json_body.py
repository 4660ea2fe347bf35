"""A JSON request body read once, as bytes, and validated by pydantic's own JSON parser.

For a `body: Model` parameter FastAPI reads the body, runs `json.loads` on it and validates
the resulting dicts and lists: three copies of a large upload's contact list at once (the
bytes, the dicts, the models), and a Python-level parse of every value. Routes that take
large bodies read them with `read_body` and validate them with `parse_json_body`:
`Model.model_validate_json(raw)` parses in Rust straight into the models, and the caller
lets go of the bytes as soon as it has them.

Declare the body in the docs with `openapi_body(Model)` (the route takes no body
parameter). The success path differs from FastAPI's only in speed; any failure is replayed
through FastAPI's own steps (content type, `json.loads`, `model_validate`), so every error
keeps the status, code, message, field and row it had with a `body: Model` parameter.
"""

from __future__ import annotations

import email.message
import json
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route that reads `model` itself: the same requestBody that a
    `body: model` parameter documents. (`model` must be in the components: see api.main.)"""
    return {"requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }}


async def read_body(request: Request) -> bytes:
    """The request body, read once and not cached on the request (the caller owns the only copy)."""
    chunks = [chunk async for chunk in request.stream()]
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def is_json_content_type(content_type: str | None) -> bool:
    # FastAPI's test (strict content type): application/json or application/*+json.
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def parse_json_body(model: type[M], raw: bytes, content_type: str | None) -> M:
    """`raw` validated as `model`, or the RequestValidationError FastAPI would have raised."""
    if raw and is_json_content_type(content_type):
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            pass  # the errors are reported the way FastAPI reports them, below
    return _fastapi_validate(model, raw, content_type)


def _fastapi_validate(model: type[M], raw: bytes, content_type: str | None) -> M:
    """What FastAPI does with the body of a `body: model` parameter (the slow path)."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required",
                                       "input": None}])
    data: Any = raw
    if is_json_content_type(content_type):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error",
                                           "input": {}, "ctx": {"error": e.msg}}], body=e.doc) from e
        except Exception as e:  # not UTF-8/16/32, for one
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from e
    try:
        return model.model_validate(data, from_attributes=True)  # as FastAPI's ModelField does
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors()]) from None
