"""Caller ID rotation: round robin, seeded random, local presence."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_engine.policy.caller_id import CallerIdStrategy, choose_caller_id, number_region, parse_strategy

NYC = "+12125550100"
NYC_2 = "+12125550199"
SF = "+14155550100"
LONDON = "+442071838750"
TORONTO = "+14165550100"
POOL = [SF, NYC, LONDON]


def test_no_numbers_means_provider_default():
    assert choose_caller_id([], "round_robin", NYC, 0, "s") is None
    assert choose_caller_id(None, "local_presence", NYC, 3, "s") is None


def test_round_robin_cycles():
    picks = [choose_caller_id(POOL, "round_robin", NYC, k, "s") for k in range(6)]
    assert picks == POOL + POOL
    assert choose_caller_id(POOL, None, NYC, 4, "s") == NYC  # default strategy


def test_random_is_deterministic_per_seed_and_counter_and_spreads():
    first = choose_caller_id(POOL, "random", NYC, 1, "wf-1")
    assert first == choose_caller_id(POOL, "random", NYC, 1, "wf-1")
    picks = Counter(choose_caller_id(POOL, "random", NYC, 1, f"wf-{k}") for k in range(300))
    assert set(picks) == set(POOL) and min(picks.values()) > 60


def test_local_presence_prefers_the_same_area_code():
    assert choose_caller_id(POOL, "local_presence", "+12125559876", 0, "s") == NYC
    assert choose_caller_id(POOL, "local_presence", "+14155559876", 7, "s") == SF
    # Two numbers in the area: round robin between them.
    pool = [SF, NYC, NYC_2]
    assert [choose_caller_id(pool, "local_presence", "+12125559876", k, "s") for k in range(3)] == [NYC, NYC_2, NYC]


def test_local_presence_falls_back_to_the_country_then_round_robin():
    # A Boston contact: no 617 number, the US numbers share its country code.
    assert [choose_caller_id(POOL, "local_presence", "+16175550100", k, "s") for k in range(3)] == [SF, NYC, SF]
    # A UK mobile: +44 shared with the London number.
    assert choose_caller_id(POOL, "local_presence", "+447911123456", 1, "s") == LONDON
    # An Indian number: nothing shares it, plain round robin.
    assert [choose_caller_id(POOL, "local_presence", "+919876543210", k, "s") for k in range(3)] == POOL
    # Unparseable contact or pool entries do not break it.
    assert choose_caller_id(POOL, "local_presence", "not a number", 2, "s") == LONDON
    assert choose_caller_id(["bogus", NYC], "local_presence", "+12125559876", 0, "s") == NYC


def test_nanp_countries_share_the_country_code_but_not_the_area():
    assert choose_caller_id([SF, TORONTO], "local_presence", "+14165559999", 0, "s") == TORONTO


def test_number_region():
    assert number_region(NYC) == (1, "212")
    assert number_region(LONDON) == (44, "20")
    assert number_region("junk") is None


def test_strategy_names():
    assert parse_strategy("Round-Robin") is CallerIdStrategy.ROUND_ROBIN
    assert parse_strategy("sequential") is CallerIdStrategy.ROUND_ROBIN
    assert parse_strategy("LOCAL_PRESENCE") is CallerIdStrategy.LOCAL_PRESENCE
    with pytest.raises(ValueError, match="unknown caller ID strategy 'loudest'"):
        choose_caller_id(POOL, "loudest", NYC, 0, "s")


numbers = st.sampled_from([NYC, NYC_2, SF, LONDON, TORONTO, "+61212345678", "+919876543210"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(numbers, min_size=1, max_size=6),
    st.sampled_from(list(CallerIdStrategy)),
    numbers,
    st.integers(0, 10_000),
    st.text(max_size=12),
)
def test_always_one_of_the_pool_and_local_when_possible(pool, strategy, contact, counter, seed):
    chosen = choose_caller_id(pool, strategy, contact, counter, seed)
    assert chosen in pool
    assert chosen == choose_caller_id(pool, strategy, contact, counter, seed)
    if strategy == CallerIdStrategy.ROUND_ROBIN:
        assert chosen == pool[counter % len(pool)]
    if strategy == CallerIdStrategy.LOCAL_PRESENCE:
        same_area = [n for n in pool if number_region(n) == number_region(contact)]
        same_country = [n for n in pool if number_region(n)[0] == number_region(contact)[0]]
        if same_area:
            assert chosen in same_area
        elif same_country:
            assert chosen in same_country
