"""Finding the call an earlier try of the same attempt already placed, so a retry never dials twice.

Twilio's ``POST /Calls.json`` has no idempotency key, and an activity runs at least once: a
worker that crashes (or times out) after Twilio accepted the create but before the answer
was recorded retries the same attempt. So `place_call` first looks for the call an earlier
try of the same attempt created, and adopts it:

- Each attempt is made identifiable: its StatusCallback URL is
  ``{public_base_url}/callbacks/twilio?wf=<contact workflow id>&attempt=<n>`` and the agent
  Url carries the same identifiers. Twilio, however, does not return a call's StatusCallback
  or Url in the Call resource (nor in the list of calls), and its Call Events subresource
  (which does show the URLs Twilio requested) is only readable 15 minutes after the call
  ends. So the marker cannot be read back while it matters.
- The fallback, used always: a call counts as this attempt's call when it is outbound, was
  placed **to** ``request.to`` **from** one of our numbers, and was created at or after
  ``request.attempt_started_at`` (minus ``adopt_clock_skew_seconds``: Twilio's timestamps
  have whole-second precision and its clock is not ours). Why this is sound for this engine:
  the contact workflow runs one attempt at a time and decides ``attempt_started_at`` (its
  deterministic workflow time) before the activity first runs; the previous attempt's call
  was created before that attempt ended, which is before the redial wait began. The residual
  risk is another of our campaigns dialing the same number from the same caller ID at the
  same time (that call would be adopted instead of dialing again: a missed call, never a
  double one).
- Two list queries cover every state: ``To``/``From`` with ``StartTime>=<day of the
  threshold>`` finds calls that were dialed, and ``To``/``From`` with ``Status=queued`` finds
  calls still waiting in Twilio's queue (they have no start time yet, so a StartTime filter
  may not return them). A call that failed or was canceled before it was ever dialed has no
  start time either and is not found: the retry then dials once more. Twilio's list may also
  lag a create by a moment; a retry that comes within that lag could dial again. Both are
  narrow windows that only a worker crash in the middle of a create can open.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Iterable

from twilio.base.exceptions import TwilioException

from activities.providers.base import ProviderError
from activities.providers.twilio_rest import raise_mapped
from campaign_engine.models import CallRequest

logger = logging.getLogger(__name__)


async def iter_calls(calls: Any, *, page_size: int, max_pages: int, **filters: Any) -> AsyncIterator[Any]:
    """The calls of Twilio's list ``calls`` (newest first) that match ``filters``, at most ``max_pages`` pages."""
    try:
        page = await calls.page_async(page_size=page_size, **filters)
        pages = 1
        while page is not None:
            for call in page:
                yield call
            if pages >= max_pages:
                if page.next_page_url:
                    logger.warning("twilio: stopped listing calls after %d pages (%s)", pages, filters)
                return
            page = await page.next_page_async()
            pages += 1
    except ProviderError:
        raise
    except TwilioException as exc:
        raise_mapped(exc, "list calls")


async def find_existing_call(
    calls: Any,
    request: CallRequest,
    from_number: str,
    *,
    our_numbers: Iterable[str],
    clock_skew: timedelta,
    page_size: int,
    max_pages: int,
) -> Any | None:
    """The call of Twilio's list ``calls`` that counts as this attempt's call, or None."""
    started = request.attempt_started_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=timezone.utc)
    threshold = started.astimezone(timezone.utc) - clock_skew
    ours = set(our_numbers) | {from_number}
    filters: dict[str, Any] = {"to": request.to}
    if len(ours) == 1:
        filters["from_"] = from_number
    found: dict[str, Any] = {}
    rank: dict[str, int] = {}  # position in Twilio's newest-first list: breaks ties
    for extra in ({"start_time_after": threshold.date().isoformat()}, {"status": "queued"}):
        position = 0
        async for call in iter_calls(calls, page_size=page_size, max_pages=max_pages, **filters, **extra):
            position += 1
            created = call.date_created
            if not call.sid or not isinstance(created, datetime) or created < threshold:
                continue
            if call.sid in request.exclude_call_ids:
                continue  # an earlier attempt's call: a redial must dial again
            if call._from not in ours or call.to != request.to:
                continue
            if call.direction and not str(call.direction).startswith("outbound"):
                continue
            found[call.sid] = call
            rank.setdefault(call.sid, position)
    if not found:
        return None
    # Earliest first; Twilio's timestamps have whole seconds, so within one second the
    # call listed last (lists are newest first) is the earliest.
    ordered = sorted(found.values(), key=lambda c: (c.date_created, -rank[c.sid]))
    if len(ordered) > 1:
        logger.warning(
            "twilio: %d calls match attempt %s: adopting the first, %s",
            len(ordered),
            request.idempotency_key,
            [c.sid for c in ordered],
        )
    return ordered[0]
