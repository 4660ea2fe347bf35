"""OpenAPI of the file forms of the two upload routes (api.csv_upload)."""

from __future__ import annotations

from typing import Any

from api.csv_rows import XLSX_TYPES

FILE_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "The contacts: a CSV (UTF-8, a BOM allowed, comma-separated, the first row "
                 "names the columns) or an Excel workbook (.xlsx, its first sheet). Columns: phone_number "
                 "(or phone, number, mobile), name, email, scheduledCallDateTime, timezone; every other "
                 "column goes into custom_data. Up to MAX_UPLOAD_ROWS rows."},
        "config": {"type": "string", "description": "The campaign fields as one JSON object (instead of, or "
                   "besides, form fields of the same names)."},
    },
    "additionalProperties": {"type": "string", "description": "A campaign field (campaignName, agentId, "
                             "redialConfig as JSON, ...)"},
}
FILE_DESCRIPTION = (
    "\n\nThe contacts may also come as a file: `multipart/form-data` with a `file` part (CSV or .xlsx) and "
    "the campaign fields as form fields or a `config` JSON part, or the file as the body (`text/csv`, or "
    "the .xlsx media type) with the campaign fields as query parameters. A file is read as a stream and "
    "written to the store in pages (not limited to 1,000 rows: MAX_UPLOAD_ROWS); row errors name the "
    "file's row (the header is row 1) and its column.")


def file_upload_body(extra: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` of an upload route, with the file forms beside its JSON body."""
    content = extra["requestBody"]["content"]
    content["multipart/form-data"] = {"schema": FILE_FORM}
    content["text/csv"] = {"schema": {"type": "string"}}
    for media in XLSX_TYPES:
        content[media] = {"schema": {"type": "string", "format": "binary"}}
    extra["description"] = FILE_DESCRIPTION.strip()
    return extra
