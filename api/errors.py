"""The error envelope every endpoint answers with: {success: false, message, error, details}."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.json_body import is_json_content_type
from api.schemas import too_many_contacts_message

# One HTTP status per error code. The state errors (what the campaign's or contact's state
# forbids) are all 409 Conflict, whichever endpoint meets them.
STATUS_OF_CODE = {
    "CAMPAIGN_ALREADY_RUNNING": 409,
    "CAMPAIGN_NOT_RUNNING": 409,
    "INVALID_CAMPAIGN_STATE": 409,
    "CONTACT_ALREADY_FINAL": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "NOT_FOUND": 404,
}
# The error answers the OpenAPI documents, by status (each operation lists those it can give;
# api.main adds the ones common to a router, the routes their own).
ERROR_DESCRIPTIONS = {
    400: "BAD_REQUEST (a parameter or the body is not valid; `details` name the fields) or INVALID_JSON",
    401: "UNAUTHORIZED: the x-api-key header is missing, repeated or not a key of this engine",
    403: "FORBIDDEN: the signature is missing, invalid or expired",
    408: "REQUEST_TIMEOUT: the body did not arrive within BODY_READ_TIMEOUT_SECONDS",
    413: "PAYLOAD_TOO_LARGE: the body is over MAX_BODY_BYTES (an upload: over its contact limit)",
    415: "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json",
    422: "CONSENT_REQUIRED (a contact without `consent` while the deployment sets CONSENT_REQUIRED) or "
         "INVALID_CONSENT (a contact's `consent` is malformed); `details` name each row and field, nothing "
         "is written",
    503: "SERVICE_UNAVAILABLE: Temporal or the store does not answer; try again shortly",
}


class ErrorEnvelope(BaseModel):
    """Every error answer of the API (documented as the content of each 4xx and 5xx)."""

    success: Literal[False]
    message: str = Field(description="what went wrong, for a person")
    error: str = Field(description="the error code, e.g. BAD_REQUEST, NOT_FOUND, RATE_LIMIT_EXCEEDED")
    details: list[dict[str, Any]] | dict[str, Any] | None = Field(
        None, description="each bad field (`field`, `message`, and `row` for a contact row)")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses (ERROR_DESCRIPTIONS), in the envelope."""
    return {status: {"description": ERROR_DESCRIPTIONS[status], "model": ErrorEnvelope} for status in statuses}


# Input echoed back in a message is cut to this many characters (a 100 KB id is not sent back).
ECHO_LIMIT = 64
# No message or detail of the envelope is longer than this.
MESSAGE_LIMIT = 1000


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """`value` as text for a message, cut to `limit` characters ('...' and the length after)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def state_error(code: str, message: str, details: Any = None) -> ApiError:
    """An error whose status is the one of its code (STATUS_OF_CODE)."""
    return ApiError(STATUS_OF_CODE[code], code, message, details)


def _capped(details: Any) -> Any:
    if isinstance(details, list):
        return [{**d, "message": echo(d["message"], MESSAGE_LIMIT)} if isinstance(d, dict)
                and isinstance(d.get("message"), str) else d for d in details]
    return details


def envelope(status: int, code: str, message: str, details: Any = None, headers=None) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "message": echo(message, MESSAGE_LIMIT), "error": code}
    if details is not None:
        body["details"] = _capped(details)
    return JSONResponse(body, status_code=status, headers=headers)


def is_consent_error(loc: Sequence[Any]) -> bool:
    """A validation error of a contact's `consent` (by its loc): it refuses the whole request
    with 422 INVALID_CONSENT, as a contact without consent under CONSENT_REQUIRED does."""
    return "consent" in [str(p) for p in loc]


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


def validation_details(errors: Sequence[Any]) -> list[dict]:
    details = []
    for err in errors:
        field, row = _field_path(tuple(err.get("loc", ())))
        message = "unknown field" if err.get("type") == "extra_forbidden" else err.get("msg", "invalid")
        item = {"field": field, "message": message}
        if row is not None:
            item["row"] = row
        details.append(item)
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return envelope(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        invalid = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if invalid is not None:
            loc = tuple(invalid.get("loc", ()))
            where = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
            reason = (invalid.get("ctx") or {}).get("error") or invalid.get("msg", "invalid")
            message = f"the request body is not valid JSON: {reason}{where}"
            return envelope(400, "INVALID_JSON", message, [{"field": "body", "message": message}])
        if _sent_as_other_than_json(request, errors):
            content_type = request.headers.get("content-type") or "none"
            message = (f"the body must be JSON sent with Content-Type: application/json "
                       f"(this request's Content-Type: {echo(content_type)})")
            return envelope(415, "UNSUPPORTED_MEDIA_TYPE", message, [{"field": "Content-Type", "message": message}])
        if any(e.get("type") == "too_many_contacts" for e in errors):
            msg = next(e["msg"] for e in errors if e.get("type") == "too_many_contacts")
            return envelope(413, "PAYLOAD_TOO_LARGE", msg, [{"field": "contacts", "message": msg}])
        too_long = next((e for e in errors if e.get("type") == "too_long"
                         and tuple(e.get("loc", ())) == ("body", "contacts")), None)
        if too_long is not None:  # the upload-and-run body's `contacts` (max_length)
            msg = too_many_contacts_message((too_long.get("ctx") or {}).get("actual_length"))
            return envelope(413, "PAYLOAD_TOO_LARGE", msg, [{"field": "contacts", "message": msg}])
        consent = [e for e in errors if is_consent_error(e.get("loc", ()))]
        details = validation_details(consent or errors)
        first = details[0]
        message = f"{first['field']}: {first['message']}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
        if consent:  # a contact's consent is malformed: refused as a whole, as api.contact_validation.refuse_consent
            return envelope(422, "INVALID_CONSENT", message, details)
        return envelope(400, "BAD_REQUEST", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
            # FastAPI's (and api.json_body's) answer to a body json.loads cannot read at all.
            message = _unreadable_body_message(exc.__cause__)
            return envelope(400, "INVALID_JSON", message, [{"field": "body", "message": message}])
        codes = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
                 429: "RATE_LIMIT_EXCEEDED"}
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return envelope(exc.status_code, codes.get(exc.status_code, "ERROR"), detail, headers=exc.headers)


BODY_PARSE_ERROR = "There was an error parsing the body"
# Errors of a body that is not a JSON object at all (bytes, or nothing FastAPI parsed).
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})


def _sent_as_other_than_json(request: Request, errors: Sequence[Any]) -> bool:
    """A body was sent, not as JSON (another or no Content-Type), so it was never parsed."""
    if is_json_content_type(request.headers.get("content-type")):
        return False
    return any(tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT for e in errors)


def _unreadable_body_message(cause: BaseException | None) -> str:
    if isinstance(cause, RecursionError):
        return "the request body is not valid JSON: it nests arrays or objects too deeply"
    if isinstance(cause, UnicodeError):
        return "the request body is not valid JSON: it is not UTF-8 (nor UTF-16 or UTF-32) text"
    return "the request body is not valid JSON"
