"""The upload writes its contacts as it validates them (store/contact_copy.py): pages are in
PostgreSQL before the last row is read, so a bad row late in the list must still leave nothing
behind, and COPY's text format must carry every value exactly."""

from __future__ import annotations

from sqlalchemy import func, select

from campaign_engine.store.contact_copy import PAGE
from campaign_engine.store.db import store_engine
from campaign_engine.store.tables import campaigns, contacts


def rows(n: int) -> list[dict]:
    return [{"phone_number": f"+9198{i:08d}", "custom_data": {"i": i}} for i in range(n)]


async def count_rows(db) -> tuple[int, int]:
    async with db.connect() as conn:
        return tuple([(await conn.execute(select(func.count()).select_from(t))).scalar_one()
                      for t in (campaigns, contacts)])


async def test_bad_rows_after_pages_were_written_leave_nothing(engine):
    db = store_engine(engine.settings)
    try:
        late = 2 * PAGE + 7  # two pages went to PostgreSQL before this row was read
        contacts_in = rows(3 * PAGE)
        contacts_in[late]["phone_number"] = "12345"
        contacts_in[late + 50]["phone_number"] = "+1 555"
        body = {"campaignName": "Late", "agentId": "a", "contacts": contacts_in}
        resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
        assert resp.status_code == 400, resp.text
        err = resp.json()
        assert err["error"] == "BAD_REQUEST"
        assert err["message"].startswith(f"contacts[{late}].phone_number") and "(and 1 more)" in err["message"]
        assert [d["row"] for d in err["details"]] == [late, late + 50]
        assert await count_rows(db) == (0, 0)

        # The same list made good is written whole, keys in order.
        contacts_in[late]["phone_number"] = "+919999999999"
        contacts_in[late + 50]["phone_number"] = "+919999999998"
        ok = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
        assert ok.status_code == 200, ok.text
        assert ok.json()["data"]["contacts"]["accepted"] == 3 * PAGE
        async with db.connect() as conn:
            keys = (await conn.execute(select(contacts.c.key, contacts.c.custom_data).order_by(contacts.c.key))).all()
            total = (await conn.execute(select(campaigns.c.total_contacts, campaigns.c.received_contacts))).one()
        assert [k for k, _ in keys] == list(range(3 * PAGE))
        assert [d["i"] for _, d in keys] == list(range(3 * PAGE))
        assert tuple(total) == (3 * PAGE, 3 * PAGE)
    finally:
        await db.dispose()


async def test_copy_text_carries_escapes_and_unicode_exactly(engine):
    tricky = {
        "path": "C:\\Users\\new\\table", "quote": 'she said "hi"', "lines": "one\ntwo\tthree\r",
        "literal": "\\u0000 is six characters here", "unicode": "नमस्ते — ünïcödé 🚀", "nested": {"a\\b": [1, 2.5, None, True]},
    }
    body = {"campaignName": "Escapes", "agentId": "a", "isScheduledCall": True,
            "callingWindow": {"startTime": "00:00", "endTime": "23:59", "timeZone": "Asia/Kolkata"},
            "contacts": [
                {"phone_number": "+919800000001", "name": "O'Brien \\ Sons", "email": "a\\b@example.com",
                 "custom_data": tricky, "scheduledCallDateTime": "2030-01-02T03:04:05+05:30",
                 "timezone": "America/New_York"},
                {"phone_number": "+919800000002", "custom_data": {}, "scheduledCallDateTime": "2030-01-02T00:00:00Z"},
            ]}
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    assert resp.status_code == 200, resp.text
    db = store_engine(engine.settings)
    try:
        async with db.connect() as conn:
            got = (await conn.execute(select(contacts).order_by(contacts.c.key))).all()
    finally:
        await db.dispose()
    first, second = got
    assert (first.name, first.email, first.custom_data, first.timezone) == (
        "O'Brien \\ Sons", "a\\b@example.com", tricky, "America/New_York")
    assert first.scheduled_at.isoformat() == "2030-01-01T21:34:05+00:00" == first.next_call_at.isoformat()
    assert first.zones == ["America/New_York"] and second.zones == ["Asia/Calcutta"]  # from the number
    assert (second.name, second.email, second.custom_data, second.consent) == (None, None, {}, None)


async def test_a_bad_email_is_named_with_its_value(engine):
    body = {"campaignName": "Mail", "agentId": "a", "contacts": [{"phone_number": "+919800000001", "email": "nope"}]}
    resp = await engine.http.post("/uploadCampaignDataAndRun", json=body, headers=engine.headers())
    assert resp.status_code in (400, 422), resp.text
    assert "'nope' is not an email address" in resp.text and "{v" not in resp.text
