"""A configuration error stops `campaign-engine up`, `worker` and `python worker.py` with one
line that names the variable and what is wrong, and exit status 2; never a traceback.

The settings classes (pydantic-settings) validate every variable; `one_line` turns their
ValidationError, a ConfigError, or a provider's missing setting into that line. A server
that `up` started and that died is one line too (exit status 1).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pydantic import ValidationError

CONFIG_ERROR_STATUS = 2
SERVER_DIED_STATUS = 1


class ConfigError(ValueError):
    """A configuration that cannot work; the message is the one line (it names the variable)."""


class ServerDied(RuntimeError):
    """A server `campaign-engine up` started has died; the message is the one line."""


def _validation_line(err: ValidationError) -> str:
    errors = err.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or err.title
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if message.startswith(f"{where}: "):
        message = message[len(where) + 2:]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"


def one_line(exc: BaseException) -> tuple[str, int] | None:
    """(line, exit status) for a configuration error or a dead server, else None."""
    if isinstance(exc, ValidationError) and exc.title.endswith("Settings"):
        return _validation_line(exc), CONFIG_ERROR_STATUS
    if isinstance(exc, ConfigError):
        return str(exc), CONFIG_ERROR_STATUS
    if isinstance(exc, ServerDied):
        return str(exc), SERVER_DIED_STATUS
    if type(exc).__name__ in _ONE_LINE_ERRORS:
        return " ".join(str(exc).removeprefix("campaign-engine: ").split()), CONFIG_ERROR_STATUS
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, (ExceptionGroup, BaseExceptionGroup)):
        for inner in exc.exceptions:
            found = one_line(inner)
            if found:
                return found
    if cause is not None and cause is not exc and isinstance(cause, (ValidationError, ConfigError)):
        return one_line(cause)
    return None


# Errors of the engine's own that already say, on one line, which address does not answer.
_ONE_LINE_ERRORS = {"TemporalUnreachable", "StoreUnreachable", "StoreNotConfigured"}


def run_reporting(main: Callable[[], int], program: str = "campaign-engine",
                  preflight: Callable[[], None] | None = None) -> int:
    """`main()`'s status; a configuration error is one line on stderr and status 2."""
    try:
        if preflight is not None:
            preflight()
        return main()
    except Exception as exc:
        found = one_line(exc)
        if found is None:
            raise
        line, status = found
        print(f"{program}: {line}", file=sys.stderr, flush=True)
        return status
