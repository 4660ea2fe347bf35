"""The simulated carrier's settings as text (SIMULATED_OUTCOMES, SIMULATED_*_SECONDS),
parsed: the settings validate them, the simulated provider uses them."""

from __future__ import annotations

from campaign_engine.calls import Outcome


def parse_outcome_mix(text: str) -> list[tuple[Outcome, float]]:
    """'completed=0.6,no-answer=0.4' -> [(COMPLETED, 0.6), (NO_ANSWER, 0.4)], normalised."""
    mix: list[tuple[Outcome, float]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, weight = part.partition("=")
        name = name.strip().replace("_", "-")
        try:
            outcome = Outcome(name)
            w = float(weight)
        except ValueError:
            raise ValueError(f"SIMULATED_OUTCOMES: '{part.strip()}' is not outcome=weight") from None
        if w < 0:
            raise ValueError(f"SIMULATED_OUTCOMES: weight of {name} is negative")
        mix.append((outcome, w))
    total = sum(w for _, w in mix)
    if not mix or total <= 0:
        raise ValueError("SIMULATED_OUTCOMES: needs at least one outcome with a positive weight")
    return [(o, w / total) for o, w in mix]


def parse_seconds_range(text: str) -> tuple[float, float]:
    """'5' -> (5, 5); '2-8' -> (2, 8)."""
    low, sep, high = str(text).partition("-")
    try:
        a = float(low)
        b = float(high) if sep else a
    except ValueError:
        raise ValueError(f"'{text}' is not a number of seconds or a min-max range") from None
    if a < 0 or b < a:
        raise ValueError(f"'{text}' is not a valid range of seconds")
    return a, b
