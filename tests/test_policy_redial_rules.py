"""Redials: the simple form (redial.py) and the rule-based form with callbacks and windows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from campaign_engine.models import AttemptRecord, Outcome, RedialPolicy
from campaign_engine.policy.redial import (
    DEFAULT_RETRY_INTERVAL_SECONDS,
    RedialDecision,
    decide_after_attempt,
    describe_wait,
    interval_before_attempt,
)
from campaign_engine.policy.redial_rules import (
    CallFact,
    NextCall,
    RedialRule,
    RuleBasedRedial,
    backoff_seconds,
    base_backoff_seconds,
    decide_next_call,
    is_opt_out,
    jitter_fraction,
    match_rule,
    matches_terminal,
    normalize_outcome,
    requested_callback,
)
from campaign_engine.policy.windows import CallingWindow, is_open

UTC = timezone.utc
NY = ["America/New_York"]
OFFICE = CallingWindow(start_time="09:00", end_time="20:00", days=["mon", "tue", "wed", "thu", "fri"])
MONDAY_NOON_NY = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- redial.py: the simple form ------------------------------------------------------------


def test_interval_list_shorter_than_redials_repeats_its_last_value():
    policy = RedialPolicy(enabled=True, max_attempts=5, retry_intervals=[60, 300])
    assert [interval_before_attempt(policy, n) for n in (2, 3, 4, 5)] == [60, 300, 300, 300]


def test_missing_interval_list_means_one_hour():
    policy = RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[])
    assert interval_before_attempt(policy, 2) == DEFAULT_RETRY_INTERVAL_SECONDS == 3600
    assert interval_before_attempt(RedialPolicy(enabled=True, max_attempts=3), 3) == 3600


def test_max_attempts_counts_the_first_call():
    policy = RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[60, 120])
    first = decide_after_attempt(policy, 1, Outcome.NO_ANSWER)
    second = decide_after_attempt(policy, 2, Outcome.BUSY)
    third = decide_after_attempt(policy, 3, Outcome.NO_ANSWER)
    assert (first.redial, first.wait_seconds) == (True, 60)
    assert (second.redial, second.wait_seconds) == (True, 120)
    assert not third.redial and third.reason == "all 3 attempts used"
    assert not decide_after_attempt(RedialPolicy(enabled=True, max_attempts=1), 1, Outcome.BUSY).redial


@pytest.mark.parametrize(
    ("policy", "outcome", "cause", "reason"),
    [
        (RedialPolicy(enabled=True, max_attempts=3), Outcome.COMPLETED, None, "reached"),
        (RedialPolicy(enabled=True, max_attempts=3), Outcome.FAILED, "INVALID_NUMBER", "never redialled after INVALID_NUMBER"),
        (RedialPolicy(enabled=True, max_attempts=3), Outcome.NO_ANSWER, "OPT_OUT", "never redialled after OPT_OUT"),
        (RedialPolicy(enabled=True, max_attempts=3), Outcome.CANCELED, None, "call canceled"),
        (RedialPolicy(enabled=False, max_attempts=3), Outcome.BUSY, None, "redial disabled"),
        (RedialPolicy(enabled=True, max_attempts=3), Outcome.VOICEMAIL, None, "voicemail is not redialled"),
    ],
)
def test_decide_after_attempt_stops(policy, outcome, cause, reason):
    decision = decide_after_attempt(policy, 1, outcome, cause)
    assert decision == RedialDecision(False, reason=reason)
    assert decision.next_call_at(MONDAY_NOON_NY) is None


def test_redial_decision_next_call_at_and_describe_wait():
    decision = RedialDecision(True, wait_seconds=90)
    assert decision.next_call_at(MONDAY_NOON_NY) == MONDAY_NOON_NY + timedelta(seconds=90)
    assert [describe_wait(s) for s in (90, 600, 3600, 5400, 7200)] == ["90s", "10m", "1h", "1h30m", "2h"]


# --- the rule-based model ------------------------------------------------------------------

WIRE = {
    "enabled": True,
    "maxAttempts": 6,
    "callStatus": [
        {"match": "busy", "intervalMinutes": 10, "maxAttempts": 3},
        {"match": "no_answer", "intervalMinutes": 20, "maxAttempts": 4},
        {"match": "CALL_REJECTED", "intervalMinutes": 60, "maxAttempts": 2},
    ],
    "terminalConditions": ["not_interested", "NETWORK_ERROR"],
}


def test_wire_and_snake_case_forms_are_the_same():
    wire = RuleBasedRedial.model_validate(WIRE)
    snake = RuleBasedRedial.model_validate(
        {
            "enabled": True,
            "max_attempts": 6,
            "call_status": [
                {"match": "BUSY", "interval_minutes": 10, "max_attempts": 3},
                {"match": "no-answer", "interval_minutes": 20, "max_attempts": 4},
                {"match": "CALL_REJECTED", "interval_minutes": 60, "max_attempts": 2},
            ],
            "terminal_conditions": ["not_interested", "NETWORK_ERROR"],
        }
    )
    assert wire == snake
    assert [r.match for r in wire.call_status] == ["busy", "no-answer", "CALL_REJECTED"]
    assert [r.is_cause for r in wire.call_status] == [False, False, True]
    assert RuleBasedRedial.model_validate(wire.model_dump(mode="json")) == wire


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"callStatus": [{"match": "bussy", "intervalMinutes": 5, "maxAttempts": 2}]}, "unknown match 'bussy'"),
        ({"callStatus": [{"match": "completed", "intervalMinutes": 5, "maxAttempts": 2}]}, "never redialled"),
        ({"callStatus": [{"match": "INVALID_NUMBER", "intervalMinutes": 5, "maxAttempts": 2}]}, "never redialled"),
        ({"callStatus": [{"match": "busy", "intervalMinutes": 0, "maxAttempts": 2}]}, "greater than 0"),
        ({"callStatus": [{"match": "busy", "intervalMinutes": 5, "maxAttempts": 0}]}, "greater than or equal to 1"),
        (
            {"callStatus": [{"match": "busy", "intervalMinutes": 5, "maxAttempts": 2}, {"match": "BUSY", "intervalMinutes": 9, "maxAttempts": 2}]},
            "two rules for 'busy'",
        ),
        (
            {"redialVoicemail": False, "callStatus": [{"match": "voicemail", "intervalMinutes": 5, "maxAttempts": 2}]},
            "redialVoicemail is false",
        ),
        ({"backoff": "linearish"}, "unknown backoff 'linearish'"),
        ({"jitterRatio": 1.5}, "less than or equal to 0.9"),
        ({"terminalConditions": ["busy", ""]}, "terminalConditions[1]"),
    ],
)
def test_rule_validation_messages(payload, message):
    with pytest.raises(ValidationError) as info:
        RuleBasedRedial.model_validate(payload)
    assert message in str(info.value)


def test_normalize_outcome():
    assert normalize_outcome("no_answer") is Outcome.NO_ANSWER
    assert normalize_outcome("NO-ANSWER") is Outcome.NO_ANSWER
    assert normalize_outcome(None) is Outcome.FAILED
    with pytest.raises(ValueError):
        normalize_outcome("answered")


def test_match_rule_prefers_the_hang_up_cause():
    policy = RuleBasedRedial.model_validate(WIRE)
    assert match_rule(policy, "failed", "CALL_REJECTED").match == "CALL_REJECTED"
    assert match_rule(policy, "busy", "USER_BUSY").match == "busy"
    assert match_rule(policy, "failed", None) is None
    assert match_rule(policy, "completed", "CALL_REJECTED") is None


@pytest.mark.parametrize(
    ("redial_voicemail", "rules", "expected"),
    [
        (None, ["no-answer"], None),
        (None, ["no-answer", "voicemail"], "voicemail"),
        (True, ["no-answer"], "no-answer"),
        (True, ["no-answer", "voicemail"], "voicemail"),
        (True, ["busy"], None),
        (False, ["no-answer"], None),
    ],
)
def test_voicemail_option(redial_voicemail, rules, expected):
    policy = RuleBasedRedial(
        enabled=True,
        redial_voicemail=redial_voicemail,
        call_status=[RedialRule(match=m, interval_minutes=5, max_attempts=3) for m in rules],
    )
    rule = match_rule(policy, Outcome.VOICEMAIL, None)
    assert (rule.match if rule else None) == expected


# --- decide_next_call ----------------------------------------------------------------------

BUSY_ONLY = RuleBasedRedial.model_validate(
    {"enabled": True, "callStatus": [{"match": "busy", "intervalMinutes": 120, "maxAttempts": 3}]}
)


def test_per_status_cap_counts_calls_that_ended_so():
    now = MONDAY_NOON_NY
    first = decide_next_call(BUSY_ONLY, [(1, "busy", None, {})], now, "wf", NY, OFFICE)
    assert isinstance(first, NextCall) and isinstance(first, RedialDecision)
    assert first.redial and first.at == now + timedelta(hours=2) and first.next_attempt == 2
    assert first.reason == "redial 1 of 2 in 2h after busy"
    assert first.wait_seconds == 7200 and first.backoff_seconds == 7200 and first.rule == "busy"
    assert first.next_call_at(now) == first.at
    second = decide_next_call(BUSY_ONLY, [(1, "busy", None, {}), (2, "busy", None, {})], now, "wf", NY, OFFICE)
    assert second.redial and second.reason == "redial 2 of 2 in 2h after busy"
    third = decide_next_call(BUSY_ONLY, [(1, "busy", None, {}), (2, "busy", None, {}), (3, "busy", None, {})], now, "wf", NY, OFFICE)
    assert not third.redial and third.reason == "all 3 calls allowed after busy used"
    assert third.next_call_at(now) is None


def test_statuses_count_separately_and_the_overall_cap_wins():
    policy = RuleBasedRedial.model_validate(WIRE)  # overall 6, busy 3, no-answer 4
    history = [(1, "busy", None, {}), (2, "busy", None, {}), (3, "no-answer", None, {})]
    decision = decide_next_call(policy, history, MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert decision.redial and decision.rule == "no-answer"
    assert decision.reason == "redial 3 of 5 in 20m after no-answer"
    history += [(4, "no-answer", None, {}), (5, "no-answer", None, {}), (6, "busy", None, {})]
    capped = decide_next_call(policy, history, MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert not capped.redial and capped.reason == "all 6 attempts used"


def test_without_overall_cap_the_engine_limit_applies():
    policy = RuleBasedRedial(enabled=True, call_status=[RedialRule(match="busy", interval_minutes=1, max_attempts=20)])
    history = [(n, "busy", None, {}) for n in range(1, 20)]
    assert decide_next_call(policy, history, MONDAY_NOON_NY, "wf", NY).redial
    history.append((20, "busy", None, {}))
    assert decide_next_call(policy, history, MONDAY_NOON_NY, "wf", NY).reason == "all 20 attempts used"


@pytest.mark.parametrize(
    ("fact", "reason"),
    [
        ((1, "failed", "INVALID_NUMBER", {}), "invalid number: never redialled"),
        ((1, "busy", "OPT_OUT", {}), "opted out: never redialled"),
        ((1, "completed", None, {"opt_out": True}), "opted out: never redialled"),
        ((1, "completed", None, {"opt_out": "yes", "callback_time": "15:00"}), "opted out: never redialled"),
        ((1, "no-answer", None, {"disposition": "OPT_OUT"}), "opted out: never redialled"),
        ((1, "completed", None, {"do_not_call": 1}), "opted out: never redialled"),
        ((1, "completed", None, {}), "reached"),
        ((1, "canceled", None, {}), "call canceled"),
        ((1, "failed", "NETWORK_ERROR", {}), "terminal condition 'NETWORK_ERROR' met"),
        ((1, "no-answer", None, {"Not Interested": "true"}), "terminal condition 'not_interested' met"),
        ((1, "completed", None, {"result": "not-interested", "callback_time": "15:00"}), "terminal condition 'not_interested' met"),
        ((1, "failed", None, {}), "no redial rule for failed"),
        ((1, "failed", "NORMAL_TEMPORARY_FAILURE", {}), "no redial rule for failed (NORMAL_TEMPORARY_FAILURE)"),
        ((1, "voicemail", None, {}), "voicemail is not redialled"),
    ],
)
def test_never_redialled(fact, reason):
    policy = RuleBasedRedial.model_validate(WIRE)
    decision = decide_next_call(policy, [fact], MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert not decision.redial
    assert decision.reason == reason
    assert decision.at is None


def test_opt_out_detection():
    assert is_opt_out("opt-out", None)
    assert is_opt_out(None, {"OptOut": "TRUE"})
    assert not is_opt_out(None, {"opt_out": False, "summary": "asked about opting out"})
    assert not is_opt_out("NORMAL_CLEARING", {})


def test_terminal_condition_matching():
    fact = CallFact(1, Outcome.NO_ANSWER, "NO_ANSWER", {"sentiment": "angry", "wrong_number": True})
    assert matches_terminal("no_answer", fact)
    assert matches_terminal("Wrong Number", fact)
    assert matches_terminal("ANGRY", fact)
    assert not matches_terminal("busy", fact)


def test_disabled_means_one_call():
    disabled = RuleBasedRedial.model_validate({**WIRE, "enabled": False})
    decision = decide_next_call(disabled, [(1, "busy", None, {})], MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert not decision.redial and decision.reason == "redial disabled"
    callback = decide_next_call(disabled, [(1, "completed", None, {"callback_time": "15:00"})], MONDAY_NOON_NY, "wf", NY)
    assert not callback.redial and callback.reason == "reached"


def test_history_accepts_attempt_records():
    history = [AttemptRecord(attempt=1, outcome=Outcome.BUSY), AttemptRecord(attempt=2, outcome=None, hangup_cause="CALL_REJECTED")]
    decision = decide_next_call(RuleBasedRedial.model_validate(WIRE), history, MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert decision.redial and decision.rule == "CALL_REJECTED"
    assert decision.reason == "redial 2 of 2 in 1h after CALL_REJECTED"


def test_empty_history_and_naive_now_are_errors():
    with pytest.raises(ValueError, match="history is empty"):
        decide_next_call(BUSY_ONLY, [], MONDAY_NOON_NY, "wf")
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_next_call(BUSY_ONLY, [(1, "busy", None, {})], datetime(2026, 1, 1), "wf")


# --- windows -------------------------------------------------------------------------------


def test_redial_is_moved_into_the_window():
    friday_evening = utc(2026, 12, 5, 0, 30)  # Friday 19:30 in New York
    decision = decide_next_call(BUSY_ONLY, [(1, "busy", None, {})], friday_evening, "wf", NY, OFFICE)
    assert decision.redial
    assert decision.at == utc(2026, 12, 7, 14, 0)  # Monday 09:00 EST
    assert decision.backoff_seconds == 7200
    assert decision.wait_seconds == int((decision.at - friday_evening).total_seconds())
    assert decision.reason == (
        "redial 1 of 2 in 2h after busy; outside calling window, moved to 2026-12-07T09:00:00-05:00"
    )


def test_redial_skips_blackout_dates():
    decision = decide_next_call(
        BUSY_ONLY, [(1, "busy", None, {})], utc(2026, 12, 24, 23, 0), "wf", NY, OFFICE, ["2026-12-25"]
    )
    assert decision.at == utc(2026, 12, 28, 14, 0)


def test_no_redial_when_the_window_never_opens():
    decision = decide_next_call(
        BUSY_ONLY, [(1, "busy", None, {})], MONDAY_NOON_NY, "wf", ["Asia/Tokyo", "America/New_York"],
        CallingWindow(start_time="09:00", end_time="12:00"),
    )
    assert not decision.redial
    assert decision.reason == "redial 1 of 2 in 2h after busy, but the calling window does not open within 400 days"


# --- callbacks -----------------------------------------------------------------------------


def test_callback_at_a_local_date_and_time():
    analysis = {"callback_date": "2026-12-03", "callback_time": "3:30 pm"}
    decision = decide_next_call(BUSY_ONLY, [(1, "completed", None, analysis)], MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert decision.redial and decision.rule == "callback" and decision.next_attempt == 2
    assert decision.at == utc(2026, 12, 3, 20, 30)  # Thursday 15:30 EST
    assert decision.reason == "callback requested for 2026-12-03 15:30 America/New_York: call 2 of 20"


def test_callback_is_moved_into_the_window():
    saturday = {"callback_date": "2026-12-05", "callback_time": "15:00"}
    decision = decide_next_call(BUSY_ONLY, [(1, "completed", None, saturday)], MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert decision.at == utc(2026, 12, 7, 14, 0)
    assert "moved to 2026-12-07T09:00:00-05:00" in decision.reason


def test_callback_date_only_and_time_only():
    date_only = decide_next_call(BUSY_ONLY, [(1, "completed", None, {"callback_date": "2026-12-02"})], MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert date_only.at == utc(2026, 12, 2, 14, 0)  # the window's start that day
    no_window = decide_next_call(BUSY_ONLY, [(1, "completed", None, {"callback_date": "2026-12-02"})], MONDAY_NOON_NY, "wf", NY)
    assert no_window.at == utc(2026, 12, 2, 14, 0)  # 09:00 local
    later_today = decide_next_call(BUSY_ONLY, [(1, "completed", None, {"callback_time": "16:00"})], MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert later_today.at == utc(2026, 11, 30, 21, 0)
    tomorrow = decide_next_call(BUSY_ONLY, [(1, "completed", None, {"callback_time": "10:00"})], MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert tomorrow.at == utc(2026, 12, 1, 15, 0)


def test_callback_in_the_past_means_as_soon_as_allowed():
    decision = decide_next_call(
        BUSY_ONLY, [(1, "completed", None, {"callback_date": "2026-11-01", "callback_time": "10:00"})],
        MONDAY_NOON_NY, "wf", NY, OFFICE,
    )
    assert decision.at == MONDAY_NOON_NY


def test_callback_iso_datetime_and_unreadable_values():
    assert requested_callback({"callback_date": "2026-12-03T15:00:00+01:00"}, "America/New_York", MONDAY_NOON_NY) == utc(2026, 12, 3, 14, 0)
    assert requested_callback({"callback_date": "2026-12-03T15:00"}, "America/New_York", MONDAY_NOON_NY) == utc(2026, 12, 3, 20, 0)
    assert requested_callback({"callback_date": "next thursday"}, "America/New_York", MONDAY_NOON_NY) is None
    assert requested_callback({"callback_time": "15"}, "America/New_York", MONDAY_NOON_NY) is None
    assert requested_callback({"callback_time": "13pm"}, "America/New_York", MONDAY_NOON_NY) is None
    assert requested_callback({}, "America/New_York", MONDAY_NOON_NY) is None
    unreadable = decide_next_call(BUSY_ONLY, [(1, "completed", None, {"callback_date": "soon"})], MONDAY_NOON_NY, "wf", NY)
    assert not unreadable.redial and unreadable.reason == "reached"


def test_callback_in_a_dst_gap_uses_the_transition():
    at = requested_callback({"callback_date": "2026-03-08", "callback_time": "02:30"}, "America/New_York", utc(2026, 3, 1))
    assert at == utc(2026, 3, 8, 7, 0)


def test_callbacks_are_capped():
    ask = {"callback_time": "16:00"}
    history = [(1, "completed", None, ask), (2, "completed", None, ask), (3, "completed", None, ask)]
    decision = decide_next_call(BUSY_ONLY, history, MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert not decision.redial and decision.reason == "reached"
    busy_after = history[:2] + [(3, "busy", None, ask)]
    fallback = decide_next_call(BUSY_ONLY, busy_after, MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert fallback.rule == "busy"  # the callback budget is spent: the rules decide
    no_callbacks = RuleBasedRedial.model_validate({**BUSY_ONLY.model_dump(), "honorCallbacks": False})
    assert not decide_next_call(no_callbacks, [(1, "completed", None, ask)], MONDAY_NOON_NY, "wf", NY).redial


def test_callback_respects_the_overall_cap():
    capped = RuleBasedRedial.model_validate({**BUSY_ONLY.model_dump(), "maxAttempts": 2})
    history = [(1, "busy", None, {}), (2, "completed", None, {"callback_time": "16:00"})]
    decision = decide_next_call(capped, history, MONDAY_NOON_NY, "wf", NY, OFFICE)
    assert not decision.redial and decision.reason == "all 2 attempts used"


# --- the simple form through decide_next_call ----------------------------------------------


def test_simple_policy_goes_through_decide_after_attempt_and_the_window():
    policy = RedialPolicy(enabled=True, max_attempts=3, retry_intervals=[1800])
    decision = decide_next_call(policy, [(1, Outcome.NO_ANSWER, None, {})], utc(2026, 12, 5, 0, 45), "wf", NY, OFFICE)
    assert decision.redial and decision.at == utc(2026, 12, 7, 14, 0)
    assert decision.reason.startswith("redial 1 of 2 in 30m after no-answer; outside calling window")
    stop = decide_next_call(policy, [(1, "no-answer", None, {}), (2, "busy", None, {}), (3, "busy", None, {})], MONDAY_NOON_NY, "wf")
    assert not stop.redial and stop.reason == "all 3 attempts used"
    voicemail = decide_next_call(policy, [(1, "voicemail", None, {})], MONDAY_NOON_NY, "wf")
    assert not voicemail.redial and voicemail.reason == "voicemail is not redialled"
    callback = decide_next_call(policy, [(1, "completed", None, {"callback_time": "16:00"})], MONDAY_NOON_NY, "wf", NY)
    assert callback.redial and callback.at == utc(2026, 11, 30, 21, 0)
    opt_out = decide_next_call(policy, [(1, "completed", None, {"opt_out": True})], MONDAY_NOON_NY, "wf")
    assert not opt_out.redial


# --- backoff -------------------------------------------------------------------------------


def test_exponential_backoff_and_cap():
    policy = RuleBasedRedial(
        enabled=True, backoff="exponential", backoff_multiplier=3, max_interval_minutes=60,
        call_status=[RedialRule(match="no-answer", interval_minutes=5, max_attempts=10)],
    )
    rule = policy.call_status[0]
    assert [base_backoff_seconds(policy, rule, n) for n in (1, 2, 3, 4)] == [300, 900, 2700, 3600]
    fixed = policy.model_copy(update={"backoff": "fixed"})
    assert [base_backoff_seconds(fixed, rule, n) for n in (1, 2, 3)] == [300, 300, 300]


def test_jitter_is_deterministic_and_subtractive():
    policy = RuleBasedRedial(
        enabled=True, jitter_ratio=0.5, call_status=[RedialRule(match="busy", interval_minutes=60, max_attempts=5)]
    )
    rule = policy.call_status[0]
    waits = {backoff_seconds(policy, rule, 1, f"wf-{k}/attempt-1") for k in range(50)}
    assert all(1800 <= w <= 3600 for w in waits) and len(waits) > 40
    assert backoff_seconds(policy, rule, 1, "x") == backoff_seconds(policy, rule, 1, "x")
    a = decide_next_call(policy, [(1, "busy", None, {})], MONDAY_NOON_NY, "wf-7", NY)
    b = decide_next_call(policy, [(1, "busy", None, {})], MONDAY_NOON_NY, "wf-7", NY)
    assert a == b
    assert 0 <= jitter_fraction("anything") < 1


rules = st.builds(
    RedialRule,
    match=st.sampled_from(["busy", "no-answer", "failed", "voicemail", "CALL_REJECTED"]),
    interval_minutes=st.floats(0.5, 600),
    max_attempts=st.integers(1, 8),
)
policies = st.builds(
    RuleBasedRedial,
    enabled=st.just(True),
    max_attempts=st.one_of(st.none(), st.integers(1, 12)),
    call_status=st.lists(rules, max_size=4, unique_by=lambda r: r.match),
    backoff=st.sampled_from(["fixed", "exponential"]),
    backoff_multiplier=st.floats(1.0, 4.0),
    max_interval_minutes=st.one_of(st.none(), st.floats(1, 10_000)),
    jitter_ratio=st.floats(0, 0.9),
    redial_voicemail=st.sampled_from([None, True]),
)


@settings(max_examples=150, deadline=None)
@given(policies, st.data())
def test_backoff_is_monotone_and_capped(policy, data):
    if not policy.call_status:
        return
    rule = data.draw(st.sampled_from(policy.call_status))
    cap = (policy.max_interval_minutes or 30 * 24 * 60) * 60
    bases = [base_backoff_seconds(policy, rule, n) for n in range(1, 12)]
    assert bases == sorted(bases)
    assert all(1 <= b <= round(cap) + 1 for b in bases)
    seed = data.draw(st.text(max_size=20))
    for n, base in enumerate(bases, start=1):
        jittered = backoff_seconds(policy, rule, n, seed)
        assert max(1, base * (1 - policy.jitter_ratio)) - 1 <= jittered <= base


outcomes = st.sampled_from(["busy", "no-answer", "no_answer", "failed", "voicemail", "completed", "canceled", None])
causes = st.sampled_from([None, None, "CALL_REJECTED", "USER_BUSY", "INVALID_NUMBER", "OPT_OUT", "NETWORK_ERROR"])
analyses = st.sampled_from([{}, {}, {"callback_time": "10:00"}, {"callback_date": "2027-01-02"}, {"opt_out": True}])


@settings(max_examples=150, deadline=None)
@given(
    policies,
    st.lists(st.tuples(outcomes, causes, analyses), min_size=1, max_size=10),
    st.integers(0, 14 * 24 * 60),
    st.sampled_from(["America/New_York", "Europe/London", "Asia/Kolkata"]),
)
def test_decisions_respect_caps_and_window(policy, calls, minutes, zone):
    history = [(i, o, c, a) for i, (o, c, a) in enumerate(calls, start=1)]
    now = utc(2026, 11, 1) + timedelta(minutes=minutes)
    decision = decide_next_call(policy, history, now, "wf-1", [zone], OFFICE, ["2026-12-25"])
    _, outcome, cause, analysis = history[-1]
    if decision.redial:
        assert decision.at >= now and is_open(decision.at, OFFICE, [zone], ["2026-12-25"])
        assert decision.next_attempt == len(history) + 1 <= policy.effective_max_attempts
        assert cause not in ("INVALID_NUMBER", "OPT_OUT") and not analysis.get("opt_out")
        assert outcome != "canceled"
        if decision.rule != "callback":
            assert outcome != "completed"
            rule = policy.rule_for(decision.rule)
            ended_so = sum(1 for _, o, c, _ in history if match_rule(policy, o, c) == rule)
            assert ended_so < policy.rule_cap(rule)
    else:
        assert decision.at is None
