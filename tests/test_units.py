"""Pure pieces without a server: phone numbers, ids, the simulated carrier's draws, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.providers.simulated import (
    CarrierLedger,
    SimulatedCarrier,
    parse_outcome_mix,
    parse_seconds_range,
)
from api.errors import validation_details
from campaign_engine.ids import campaign_workflow_id, contact_workflow_id, parse_contact_workflow_id
from campaign_engine.models import CallRequest, Outcome
from campaign_engine.phones import InvalidPhoneNumber, mask_phone, normalize_e164
from campaign_engine.settings import Settings


def test_phone_numbers_normalise_to_e164_or_say_why():
    assert normalize_e164("+91 98765 43210") == "+919876543210"
    assert normalize_e164("+1 (415) 555-2671") == "+14155552671"
    for bad, why in [("9876543210", "E.164"), ("+91 123", "not a valid"), ("", "empty"),
                     ("+abc", "letters are refused"), ("+" + "9" * 300, "cannot be parsed")]:
        with pytest.raises(InvalidPhoneNumber, match=why):
            normalize_e164(bad)


def test_masking_keeps_country_and_hint_only():
    assert mask_phone("+919876543210") == "+91 98xxxxxx10"
    assert "5552671" not in mask_phone("+14155552671")


def test_workflow_ids_carry_tenant_and_position_not_phone():
    cid = campaign_workflow_id("acme", "CAMP-2026-X")
    wid = contact_workflow_id(cid, 7)
    assert wid == "campaign/acme/CAMP-2026-X/contact/7"
    assert parse_contact_workflow_id(wid) == (cid, 7)
    assert parse_contact_workflow_id("campaign/acme/CAMP-1") is None


def test_outcome_mix_and_ranges_parse_and_reject_nonsense():
    mix = parse_outcome_mix("completed=3,no_answer=1")
    assert mix == [(Outcome.COMPLETED, 0.75), (Outcome.NO_ANSWER, 0.25)]
    assert parse_seconds_range("5") == (5.0, 5.0)
    assert parse_seconds_range("2-8") == (2.0, 8.0)
    for bad in ("completed", "nope=1", "busy=-1", ""):
        with pytest.raises(ValueError):
            parse_outcome_mix(bad)
    with pytest.raises(ValueError):
        parse_seconds_range("8-2")


def _request(key: str) -> CallRequest:
    return CallRequest(idempotency_key=key, contact_workflow_id="wf", attempt=1, campaign_id="C", tenant_id="t",
                       agent_id="a", contact_key=0, to="+919876543210", attempt_started_at=datetime.now(UTC))


async def test_simulated_carrier_is_idempotent_and_deterministic(tmp_path):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    clock = [now]
    carrier = SimulatedCarrier(CarrierLedger(tmp_path / "c.db"), "completed=0.5,busy=0.5", "1", "10",
                               clock=lambda: clock[0])
    first = await carrier.place_call(_request("k1"))
    again = await carrier.place_call(_request("k1"))
    assert again.call_id == first.call_id and again.adopted and not first.adopted
    assert len(carrier.ledger.calls()) == 1 and carrier.ledger.request_count() == 2
    status = await carrier.fetch_call_status(first.call_id, _request("k1"))
    assert not status.is_final
    clock[0] = now + timedelta(seconds=60)
    final = await carrier.fetch_call_status(first.call_id, _request("k1"))
    # Another carrier over the same record (a restarted worker) sees the same outcome.
    other = SimulatedCarrier(CarrierLedger(tmp_path / "c.db"), "completed=0.5,busy=0.5", "1", "10",
                             clock=lambda: clock[0])
    assert (await other.fetch_call_status(first.call_id, _request("k1"))).outcome == final.outcome
    outcomes = {(await carrier.place_call(_request(f"k{i}"))).call_id for i in range(40)}
    assert len(outcomes) == 40


async def test_zero_length_calls_answer_with_their_outcome(tmp_path):
    carrier = SimulatedCarrier(CarrierLedger(tmp_path / "c.db"), "busy=1", "0", "0")
    placed = await carrier.place_call(_request("z"))
    assert placed.outcome is not None and placed.outcome.outcome == Outcome.BUSY
    assert placed.outcome.hangup_cause == "USER_BUSY"


def test_validation_details_name_field_and_row():
    details = validation_details([{"loc": ("body", "contacts", 3, "phone_number"), "msg": "bad"}])
    assert details == [{"field": "contacts[3].phone_number", "message": "bad", "row": 3}]


def test_api_keys_map_to_tenants_and_are_never_printed():
    settings = Settings(CAMPAIGN_API_KEYS="acme:k1, k2 ,globex:k3")
    assert settings.api_keys() == {"k1": "acme", "k2": "default", "k3": "globex"}
    assert "k1" not in repr(settings)
