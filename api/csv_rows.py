"""Contact rows of an uploaded CSV or Excel file, read as a stream (one row in memory at a time).

Columns, matched without regard to case, spaces, dashes or underscores: `phone_number` (also
`phone`, `number`, `mobile`, `phoneNumber`), `name`, `email`, `scheduledCallDateTime`,
`timezone`, and the consent's `consent_source`, `consent_obtained_at`, `consent_text`,
`consent_reference` (a row with any of them carries `consent`); every other column goes into
the contact's `custom_data` under its header as
written in the file. Row numbers are the file's own (the header is row 1), so an error names
the line a spreadsheet shows. A UTF-8 byte order mark is skipped; fields may be quoted (commas
and line breaks inside quotes are data); the delimiter is a comma, or a semicolon or tab when
the header has no comma but one of those. Blank rows are skipped.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO, Any

# The longest field the reader takes (csv's own default is 128 KiB); custom_data is limited
# to 16 KiB per contact anyway.
csv.field_size_limit(1024 * 1024)

_SPELLING = re.compile(r"[\s_\-]+")
KNOWN_COLUMNS = {
    "phonenumber": "phone_number", "phone": "phone_number", "number": "phone_number", "mobile": "phone_number",
    "mobilenumber": "phone_number", "name": "name", "email": "email",
    "scheduledcalldatetime": "scheduledCallDateTime", "timezone": "timezone",
    # The contact's consent (issue 14), one column per field.
    "consentsource": "consent.source", "consentobtainedat": "consent.obtained_at", "consenttext": "consent.text",
    "consentreference": "consent.reference",
}
PHONE_SPELLINGS = ("phone_number", "phone", "number", "mobile")

XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class FileError(ValueError):
    """The file as a whole cannot be read as contacts (no header, no phone column, not a CSV)."""


@dataclass
class Columns:
    headers: list[str]            # as written in the file
    fields: list[str | None]      # the contact field of each column, None: custom_data

    @property
    def phone_header(self) -> str:
        return self.headers[self.fields.index("phone_number")]

    def header_of(self, field: str) -> str:
        return self.headers[self.fields.index(field)] if field in self.fields else field


def read_columns(header: list[Any]) -> Columns:
    headers: list[str] = []
    fields: list[str | None] = []
    taken: set[str] = set()
    for i, cell in enumerate(header):
        text = "" if cell is None else str(cell).strip()
        name = text or f"column_{i + 1}"
        while name in headers:  # two columns of one name: the second is name_2
            name = f"{name}_2"
        field = KNOWN_COLUMNS.get(_SPELLING.sub("", text).lower())
        if field in taken:  # a second phone (or name...) column is data
            field = None
        if field:
            taken.add(field)
        headers.append(name)
        fields.append(field)
    if "phone_number" not in fields:
        found = ", ".join(h for h in headers) or "none"
        raise FileError(f"no phone column: the header row needs one of {', '.join(PHONE_SPELLINGS)} "
                        f"(columns found: {found[:300]})")
    return Columns(headers, fields)


def _cell(value: Any) -> str | None:
    """An Excel cell as the text a CSV would have."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed into Excel (919876543210.0)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def row_values(columns: Columns, cells: list[Any]) -> dict[str, Any] | None:
    """The contact dict of one row (for ContactIn), or None when the row is blank."""
    texts = [_cell(c) for c in cells]
    if not any(t and t.strip() for t in texts):
        return None
    row: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for i, text in enumerate(texts):
        if i < len(columns.headers):
            header, field = columns.headers[i], columns.fields[i]
        else:
            header, field = f"column_{i + 1}", None
        if field is None:
            if text is not None and (text != "" or i < len(columns.headers)):
                custom[header] = text
        elif text is not None and text.strip():
            if field.startswith("consent."):
                row.setdefault("consent", {})[field.removeprefix("consent.")] = text.strip()
            else:
                row[field] = text.strip()
    row.setdefault("phone_number", "")
    row["custom_data"] = custom
    return row


def _delimiter(first_line: str) -> str:
    if "," not in first_line:
        for candidate in (";", "\t"):
            if candidate in first_line:
                return candidate
    return ","


class _KeepOpen(io.BufferedIOBase):
    """`binary` for a TextIOWrapper that must not close it (the caller reads the file again)."""

    def __init__(self, binary: IO[bytes]) -> None:
        super().__init__()
        self._binary = binary

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._binary.read(-1 if size is None else size)

    read1 = read

    def close(self) -> None:  # the file stays open: its owner closes it
        pass


def csv_rows(binary: IO[bytes]) -> tuple[Columns, Iterator[tuple[int, list[str]]]]:
    """The columns and an iterator of (file row number, cells) of a CSV file."""
    text = io.TextIOWrapper(_KeepOpen(binary), encoding="utf-8-sig", newline="",  # type: ignore[type-var]
                            errors="strict")
    try:
        first = text.readline()
    except UnicodeDecodeError as err:
        raise FileError(f"the file is not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not first.strip():
        raise FileError("the file is empty: the first row must name the columns")
    delimiter = _delimiter(first)
    header = next(csv.reader([first], delimiter=delimiter))
    columns = read_columns(header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(text, delimiter=delimiter)
        line = 2
        try:
            for cells in reader:
                # reader.line_num counts physical lines: a quoted line break is one row.
                yield line, cells
                line = reader.line_num + 2
        except UnicodeDecodeError as err:
            raise FileError(f"row {line}: not UTF-8 text ({err.reason})") from None
        except csv.Error as err:
            raise FileError(f"row {line}: {err}") from None
    return columns, rows()


def xlsx_rows(binary: IO[bytes]) -> tuple[Columns, Iterator[tuple[int, list[Any]]]]:
    """The columns and (row number, cells) of the first sheet of an Excel workbook, read-only
    (openpyxl streams the sheet's XML)."""
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(binary, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise FileError(f"not an Excel (.xlsx) workbook: {err}") from None
    sheet = book.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    header = next(it, None)
    if header is None:
        raise FileError("the sheet is empty: the first row must name the columns")
    columns = read_columns(list(header))

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            for n, cells in enumerate(it, start=2):
                yield n, list(cells)
        finally:
            book.close()
    return columns, rows()


def is_xlsx(content_type: str | None, filename: str | None, head: bytes) -> bool:
    """An Excel workbook: by its media type, its name, or its zip signature."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media in XLSX_TYPES or (filename or "").lower().endswith(".xlsx") or head.startswith(b"PK\x03\x04")


def decode_check(head: bytes) -> None:
    """Refuse UTF-16 (its BOM) early with a clear message rather than a decode error per row."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileError("the file is UTF-16: save it as CSV UTF-8")
