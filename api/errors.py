"""The error envelope every endpoint answers with: {success: false, message, error, details}."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import too_many_contacts_message


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def envelope(status: int, code: str, message: str, details: Any = None, headers=None) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "message": message, "error": code}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def _field_path(loc: tuple) -> tuple[str, int | None]:
    """('body', 'contacts', 3, 'phone_number') -> ('contacts[3].phone_number', 3)."""
    parts: list[str] = []
    row = None
    items = [p for p in loc if p != "body"]
    for i, part in enumerate(items):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            if i > 0 and items[i - 1] == "contacts":
                row = part
        else:
            parts.append(str(part))
    return ".".join(parts) or "body", row


def validation_details(errors: list[dict]) -> list[dict]:
    details = []
    for err in errors:
        field, row = _field_path(tuple(err.get("loc", ())))
        item = {"field": field, "message": err.get("msg", "invalid")}
        if row is not None:
            item["row"] = row
        details.append(item)
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return envelope(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return envelope(400, "BAD_REQUEST", "the request body is not valid JSON", validation_details(errors))
        if any(e.get("type") == "too_many_contacts" for e in errors):
            msg = next(e["msg"] for e in errors if e.get("type") == "too_many_contacts")
            return envelope(413, "PAYLOAD_TOO_LARGE", msg, [{"field": "contacts", "message": msg}])
        too_long = next((e for e in errors if e.get("type") == "too_long"
                         and tuple(e.get("loc", ())) == ("body", "contacts")), None)
        if too_long is not None:  # the upload-and-run body's `contacts` (max_length)
            msg = too_many_contacts_message((too_long.get("ctx") or {}).get("actual_length"))
            return envelope(413, "PAYLOAD_TOO_LARGE", msg, [{"field": "contacts", "message": msg}])
        details = validation_details(errors)
        first = details[0]
        message = f"{first['field']}: {first['message']}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
        return envelope(400, "BAD_REQUEST", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        codes = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMIT_EXCEEDED"}
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return envelope(exc.status_code, codes.get(exc.status_code, "ERROR"), detail, headers=exc.headers)
