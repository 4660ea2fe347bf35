"""CSV and Excel uploads (issue 15): the file forms of /uploadCampaignData and
/uploadCampaignDataAndRun, against a real engine (API over HTTP, worker, PostgreSQL)."""

from __future__ import annotations

import io
import json
import tracemalloc
import uuid

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from api import csv_rows
from campaign_engine.settings import Settings
from campaign_engine.store.db import store_engine
from tests.conftest import running_engine
from tests.helpers import wait_for




def _rows_of(data: bytes) -> tuple[csv_rows.Columns, list[tuple[int, dict]]]:
    columns, rows = csv_rows.csv_rows(io.BytesIO(data))
    return columns, [(n, v) for n, cells in rows if (v := csv_rows.row_values(columns, cells)) is not None]


def test_columns_bom_quotes_and_odd_headers():
    data = ("\ufeffMobile, Name ,E-mail,Company,,Deal Value\r\n"
            '+14155550100,"Doe, John",john@example.com,"Acme, Inc.",x,"50,000"\r\n'
            "\r\n"
            '+14155550101,"Multi\nLine",,Globex,,1\r\n'
            "+14155550102,Ann\r\n").encode()
    columns, rows = _rows_of(data)
    assert columns.fields[0] == "phone_number" and columns.phone_header == "Mobile"
    assert [n for n, _ in rows] == [2, 4, 6]  # the blank line 3 skipped; the quoted line break is one row
    first = rows[0][1]
    assert first["phone_number"] == "+14155550100" and first["name"] == "Doe, John"
    assert first["email"] == "john@example.com"
    assert first["custom_data"] == {"Company": "Acme, Inc.", "column_5": "x", "Deal Value": "50,000"}
    assert rows[1][1]["name"] == "Multi\nLine"
    assert rows[2][1]["custom_data"] == {}  # a short row: the missing cells are not data


def test_phone_spellings_semicolons_and_no_phone_column():
    columns, rows = _rows_of(b"name;Phone Number;zone\nA;+14155550100;x\n")
    assert columns.phone_header == "Phone Number" and rows[0][1]["custom_data"] == {"zone": "x"}
    for spelling in ("phone", "NUMBER", "phone_number", "phoneNumber", "mobile"):
        assert _rows_of(f"{spelling}\n+14155550100\n".encode())[0].fields == ["phone_number"]
    with pytest.raises(csv_rows.FileError, match="no phone column.*tel, name"):
        _rows_of(b"tel,name\n+14155550100,A\n")


def _csv(n: int, *, bad: dict[int, str] | None = None, start: int = 0) -> str:
    lines = ["phone,name,email,plan"]
    for i in range(start, start + n):
        lines.append((bad or {}).get(i, f"+1415{5550000 + i:07d},Person {i},p{i}@example.com,gold"))
    return "\n".join(lines) + "\n"


def _counts(data: dict) -> tuple[int, int, int]:
    c = data["contacts"]
    return c["received"], c["accepted"], c["duplicates_merged"]


async def _store(sql: str, **params):
    db = store_engine(Settings())
    try:
        async with db.connect() as conn:
            return (await conn.execute(text(sql), params)).all()
    finally:
        await db.dispose()


async def _finished(eng, campaign_id: str) -> dict:
    async def probe():
        return (await eng.http.get(f"/campaigns/{campaign_id}", headers=eng.headers())).json()
    return await wait_for(probe, lambda d: d.get("status") == "completed", timeout=90, what="campaign completed")


async def test_multipart_csv_runs_with_custom_data(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        body = _csv(5).replace("+14155550003,Person 3", '+1 (415) 555-0003,"Person, 3"')
        resp = await eng.http.post(
            "/uploadCampaignDataAndRun", headers=eng.headers(),
            files={"file": ("contacts.csv", body.encode(), "text/csv")},
            data={"config": json.dumps({"campaignName": "CSV run", "agentId": "agent-1",
                                        "redialConfig": {"enabled": False}})})
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert _counts(data) == (5, 5, 0)
        campaign_id = data["campaign"]["campaignId"]
        done = await _finished(eng, campaign_id)
        assert done["total_contacts"] == 5
        rows = await _store("SELECT key, phone, name, custom_data FROM contacts WHERE campaign_id = :c ORDER BY key",
                            c=campaign_id)
        assert [r.phone for r in rows] == [f"+1415555000{i}" for i in range(5)]
        assert rows[3].name == "Person, 3" and rows[0].custom_data == {"plan": "gold"}


async def test_text_csv_body_with_query_fields_and_form_fields(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        resp = await eng.http.post(
            "/uploadCampaignDataAndRun", headers={**eng.headers(), "content-type": "text/csv"},
            params={"campaignName": "Body CSV", "agentId": "a1", "maxConcurrentCalls": "2"},
            content=_csv(3) + "+14155550000,Again,,\n")  # a duplicate number: dialled once
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert _counts(data) == (4, 3, 1)
        assert data["execution_status"]["calls_queued"] == 3
        config = (await _store("SELECT config FROM campaigns WHERE campaign_id = :c",
                               c=data["campaign"]["campaignId"]))[0].config
        assert config["max_concurrent_calls"] == 2
        await _finished(eng, data["campaign"]["campaignId"])
        # form fields instead of a config part, and a draft
        resp = await eng.http.post("/uploadCampaignData", headers=eng.headers(),
                                   files={"file": ("c.csv", _csv(2, start=10).encode(), "text/csv")},
                                   data={"campaign_name": "Draft CSV", "agent_id": "a2"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "draft" and resp.json()["uploaded_count"] == 2


async def test_bad_rows_refuse_run_and_are_reported_by_file_row(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        body = _csv(6, bad={2: "12345,Bad,,x", 4: "+14155550004,Mail,not-an-address,x"})
        fields = {"campaignName": "Bad", "agentId": "a"}
        resp = await eng.http.post("/uploadCampaignDataAndRun", headers={**eng.headers(), "content-type": "text/csv"},
                                   params=fields, content=body)
        assert resp.status_code == 400, resp.text
        details = resp.json()["details"]
        # the header is row 1: contact i is file row i + 2
        assert [(d["row"], d["field"]) for d in details] == [(4, "phone"), (6, "email")]
        assert resp.json()["message"].startswith("row 4, phone:")
        assert await _store("SELECT campaign_id FROM campaigns") == []  # nothing written
        assert await _store("SELECT key FROM contacts") == []
        # a draft keeps the valid rows and reports the others
        resp = await eng.http.post("/uploadCampaignData", headers={**eng.headers(), "content-type": "text/csv"},
                                   params={"campaign_name": "Draft", "agent_id": "a"}, content=body)
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert (out["uploaded_count"], out["failed_count"], out["total_contacts"]) == (4, 2, 4)
        assert [e["row"] for e in out["errors"]] == [4, 6]
        # no phone column at all
        resp = await eng.http.post("/uploadCampaignDataAndRun", headers={**eng.headers(), "content-type": "text/csv"},
                                   params=fields, content="tel,name\n+14155550100,A\n")
        assert resp.status_code == 400 and "no phone column" in resp.json()["message"]
        # a multipart body without a file, and a campaign field that does not validate
        resp = await eng.http.post("/uploadCampaignDataAndRun", headers=eng.headers(),
                                   files={"config": (None, json.dumps(fields))})
        assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "file"
        resp = await eng.http.post("/uploadCampaignDataAndRun", headers={**eng.headers(), "content-type": "text/csv"},
                                   params={**fields, "maxConcurrentCalls": "0"}, content=_csv(1))
        assert resp.status_code == 400 and "maxConcurrentCalls" in resp.text


async def test_xlsx_upload_and_csv_append_with_idempotency(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        book = Workbook()
        sheet = book.active
        sheet.append(["Phone", "Name", "Tier"])
        sheet.append([14155550100, "Excel Number", 1])  # a number typed into Excel, without its +
        sheet.append(["+14155550101", "Excel Text", "two"])
        buf = io.BytesIO()
        book.save(buf)
        resp = await eng.http.post("/uploadCampaignData", headers=eng.headers(),
                                   files={"file": ("c.xlsx", buf.getvalue(), csv_rows.XLSX_TYPES.copy().pop())},
                                   data={"campaign_name": "Excel", "agent_id": "a"})
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert (out["uploaded_count"], out["failed_count"]) == (1, 1)
        assert out["errors"][0]["row"] == 2 and out["errors"][0]["field"] == "Phone"
        campaign_id = out["campaign_id"]
        rows = await _store("SELECT custom_data FROM contacts WHERE campaign_id = :c", c=campaign_id)
        assert rows[0].custom_data == {"Tier": "two"}
        # append a CSV to it, under an Idempotency-Key: the retry adds nothing
        headers = {**eng.headers(), "content-type": "text/csv", "Idempotency-Key": f"append-{uuid.uuid4()}"}
        for replay in (False, True):
            resp = await eng.http.post("/uploadCampaignData", headers=headers, params={"campaign_id": campaign_id},
                                       content=_csv(3, start=101))
            assert resp.status_code == 200, resp.text
            out = resp.json()
            assert out["replayed"] is replay and out["total_contacts"] == 3
            if not replay:
                assert (out["uploaded_count"], out["duplicate_count"]) == (2, 1)
        assert len(await _store("SELECT key FROM contacts WHERE campaign_id = :c", c=campaign_id)) == 3


async def test_100k_rows_streamed_with_bounded_memory(dev_env, task_queue, carrier_db):
    n = 100_000
    bad_row = 77_777

    def chunks():
        yield b"phone,name,email,notes,region\n"
        batch = []
        for i in range(n):
            if i == bad_row:
                batch.append("+1415ABC,Bad,,,\n")
            else:
                batch.append(f"+1{2125550000 + i:010d},Person {i},p{i}@example.com,\"note, {i}\",r{i % 7}\n")
            if len(batch) == 1000:
                yield "".join(batch).encode()
                batch = []
        yield "".join(batch).encode()

    size = sum(len(c) for c in chunks())

    async def stream():
        for chunk in chunks():
            yield chunk
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        tracemalloc.start()
        try:
            resp = await eng.http.post("/uploadCampaignData", headers={**eng.headers(), "content-type": "text/csv"},
                                       params={"campaign_name": "Big", "agent_id": "a"}, content=stream(),
                                       timeout=600)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert (out["uploaded_count"], out["failed_count"], out["total_contacts"]) == (n - 1, 1, n - 1)
        assert out["errors"] == [{"row": bad_row + 2, "field": "phone", "message": out["errors"][0]["message"]}]
        # The file is about 6 MB; the whole process (API, worker, client) peaked well below it.
        assert size > 6_000_000 and peak < size / 2, (size, peak)
        count = await _store("SELECT count(*) AS n, max(key) AS k FROM contacts WHERE campaign_id = :c",
                             c=out["campaign_id"])
        assert (count[0].n, count[0].k) == (n - 1, n - 2)
        detail = (await eng.http.get(f"/campaigns/{out['campaign_id']}", headers=eng.headers())).json()
        assert detail["total_contacts"] == n - 1 and detail["status"] == "draft"


async def test_a_file_has_a_row_limit_instead_of_the_json_body_limit(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db, MAX_BODY_BYTES=1536, MAX_UPLOAD_ROWS=50) as eng:
        headers = {**eng.headers(), "content-type": "text/csv"}
        fields = {"campaign_name": "Limits", "agent_id": "a"}
        body = _csv(45)
        assert len(body) > 1536
        resp = await eng.http.post("/uploadCampaignData", headers=headers, params=fields, content=body)
        assert resp.status_code == 200 and resp.json()["uploaded_count"] == 45, resp.text
        # the same contacts as JSON are over MAX_BODY_BYTES
        rows = [{"phone_number": f"+1415{5550000 + i:07d}", "name": f"Person {i}", "email": f"p{i}@example.com"}
                for i in range(45)]
        resp = await eng.http.post("/uploadCampaignData", headers=eng.headers(), json={**fields, "contacts": rows})
        assert resp.status_code == 413 and "MAX_BODY_BYTES" in resp.json()["message"]
        # past MAX_UPLOAD_ROWS: 413, and nothing of the file is written
        resp = await eng.http.post("/uploadCampaignData", headers=headers, params={**fields, "campaign_name": "Big"},
                                   content=_csv(51, start=100))
        assert resp.status_code == 413 and "MAX_UPLOAD_ROWS" in resp.json()["message"], resp.text
        names = [r.name for r in await _store("SELECT name FROM campaigns")]
        assert names == ["Limits"]


async def test_a_keyed_file_upload_retried_gives_the_same_campaign(dev_env, task_queue, carrier_db):
    async with running_engine(dev_env, task_queue, carrier_db) as eng:
        headers = {**eng.headers(), "Idempotency-Key": f"csv-{uuid.uuid4()}"}
        fields = {"config": (None, json.dumps({"campaignName": "Keyed", "agentId": "a"}))}
        first = await eng.http.post("/uploadCampaignDataAndRun", headers=headers,
                                    files={"file": ("c.csv", _csv(4).encode(), "text/csv"), **fields})
        again = await eng.http.post("/uploadCampaignDataAndRun", headers=headers,
                                    files={"file": ("c.csv", _csv(4).encode(), "text/csv"), **fields})
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        ids = {r.json()["data"]["campaign"]["campaignId"] for r in (first, again)}
        assert len(ids) == 1 and _counts(again.json()["data"]) == (4, 4, 0)
        assert [r.n for r in await _store("SELECT count(*) AS n FROM contacts")] == [4]
        # the same key with another file: 409, nothing written
        other = await eng.http.post("/uploadCampaignDataAndRun", headers=headers,
                                    files={"file": ("c.csv", _csv(5).encode(), "text/csv"), **fields})
        assert other.status_code == 409 and other.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
        assert [r.n for r in await _store("SELECT count(*) AS n FROM campaigns")] == [1]
