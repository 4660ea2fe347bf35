"""Phone numbers: validation to E.164 with `phonenumbers`, and masking for logs and the UI."""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


class ParsedPhone(NamedTuple):
    """One number, parsed once: its E.164 form, its mask and the parsed number (for zones)."""

    e164: str
    masked: str
    number: phonenumbers.PhoneNumber


def parse_phone(raw: str) -> ParsedPhone:
    """`normalize_e164` and `mask_phone` from a single `phonenumbers.parse` of the number."""
    number = _parse_valid(raw)
    return ParsedPhone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                       _mask(number.country_code, str(number.national_number)), number)


def normalize_e164(raw: str) -> str:
    """The number in E.164, or InvalidPhoneNumber saying why.

    Numbers must be international (leading +): a campaign has no home region to guess from.
    """
    return phonenumbers.format_number(_parse_valid(raw), phonenumbers.PhoneNumberFormat.E164)


# Characters a number may be written with besides '+' and the digits 0-9: they are removed
# before the number is read. Anything else (letters, other scripts' digits, '#', ...) is
# refused: phonenumbers would read vanity letters as digits ('+1415555ABCD' dialled as
# +14155552223) and extensions as part of the number.
SEPARATORS = " -.()"
_SEPARATORS = str.maketrans("", "", SEPARATORS)
_E164_CHARS = re.compile(r"\+[0-9]+")
# The number as echoed in an error message: cut beyond this many characters.
_ECHO = 40


def _shown(text: str) -> str:
    return text if len(text) <= _ECHO else text[:_ECHO] + "..."


def _parse_valid(raw: str) -> phonenumbers.PhoneNumber:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber("phone number is empty")
    text = raw.strip()
    if not text.startswith("+"):
        raise InvalidPhoneNumber(f"'{_shown(text)}' is not in E.164 form (it must start with + and the country code)")
    if not _E164_CHARS.fullmatch(text.translate(_SEPARATORS)):
        raise InvalidPhoneNumber(
            f"'{_shown(text)}' has characters other than + and the digits 0-9 (spaces, dashes, dots and "
            "parentheses are ignored; letters are refused)")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"'{_shown(text)}' cannot be parsed: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"'{_shown(text)}' is not a valid phone number")
    return number


def mask_phone(e164: str) -> str:
    """'+919876543210' -> '+91 98xxxxxx10': country code and a hint, never the whole number."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return _mask(None, e164.lstrip("+"))
    return _mask(number.country_code, str(number.national_number))


def _mask(country_code: int | None, national: str) -> str:
    cc = f"+{country_code}" if country_code is not None else ""
    if len(national) <= 4:
        return f"{cc} {'x' * len(national)}".strip()
    return f"{cc} {national[:2]}{'x' * (len(national) - 4)}{national[-2:]}".strip()
