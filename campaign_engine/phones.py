"""Phone numbers: validation to E.164 with `phonenumbers`, and masking for logs and the UI."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


def normalize_e164(raw: str) -> str:
    """The number in E.164, or InvalidPhoneNumber saying why.

    Numbers must be international (leading +): a campaign has no home region to guess from.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber("phone number is empty")
    text = raw.strip()
    if not text.startswith("+"):
        raise InvalidPhoneNumber(f"'{text}' is not in E.164 form (it must start with + and the country code)")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"'{text}' cannot be parsed: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"'{text}' is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """'+919876543210' -> '+91 98xxxxxx10': country code and a hint, never the whole number."""
    try:
        number = phonenumbers.parse(e164, None)
        cc = f"+{number.country_code}"
        national = str(number.national_number)
    except phonenumbers.NumberParseException:
        cc, national = "", e164.lstrip("+")
    if len(national) <= 4:
        return f"{cc} {'x' * len(national)}".strip()
    return f"{cc} {national[:2]}{'x' * (len(national) - 4)}{national[-2:]}".strip()
