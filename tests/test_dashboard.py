"""The campaign dashboard (/dashboard) in a real browser.

Headless Chromium from Debian's `chromium` package (`.ci/run` installs it when missing; never
`playwright install`), driven by Playwright for Python, against a real engine: the API over
HTTP, a worker, the dev server, PostgreSQL, and the simulated carrier. The tests sign in,
create a campaign from a CSV (quotes, commas in quotes, a BOM, a `Mobile` column, extra
columns into custom_data), watch its progress reach 100% without a reload, open a contact's
attempts, export CSV and xlsx, pause, resume, remove a contact and cancel a running campaign,
show the API's error envelopes, manage the suppression list and read the audit trail, and save
the screenshots docs/dashboard.md shows. Every test
ends with no console error and no page error (those a test provokes on purpose are named).
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
import uuid
from fnmatch import fnmatch
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from api.dashboard import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.conftest import API_KEY, running_engine
from tests.helpers import wait_for

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
SLOW = 60_000  # ms: the longest any condition below is waited for
# A page polls every 1.5 s; on a busy machine an update can take a while: wait long enough.
expect.set_options(timeout=20_000)


# --- fixtures ------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def dash(dev_env, tmp_path_factory):
    """One engine for the module: calls of 0.3-0.7 s, outcomes of several kinds."""
    carrier_db = tmp_path_factory.mktemp("dashboard") / "carrier.sqlite3"
    async with running_engine(dev_env, f"tq-dash-{uuid.uuid4().hex[:8]}", carrier_db,
                              SIMULATED_RING_SECONDS="0.1-0.3", SIMULATED_TALK_SECONDS="0.2-0.4",
                              SIMULATED_OUTCOMES="completed=6,no-answer=2,busy=1,voicemail=1") as engine:
        yield engine


@pytest_asyncio.fixture(scope="module")
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


class Console:
    """The page's console errors and uncaught exceptions."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def assert_clean(self, *expected: str) -> None:
        """No error but those matching one of the `expected` patterns (each must occur)."""
        unexpected = [e for e in self.errors if not any(re.search(p, e) for p in expected)]
        assert unexpected == [], unexpected
        for pattern in expected:
            assert any(re.search(pattern, e) for e in self.errors), (pattern, self.errors)


@pytest_asyncio.fixture
async def page(browser: Browser, dash):
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                        base_url=dash.base_url)
    page = await context.new_page()
    page.console = Console(page)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() of cancel and remove
    yield page
    await context.close()


async def sign_in(page: Page) -> None:
    await page.goto("/dashboard")
    await page.fill("#api-key", API_KEY)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#campaigns")).to_be_visible()


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def csv_file(text: str, name: str = "contacts.csv") -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")}


async def create_by_api(dash, n: int, name: str, start: int, **fields) -> str:
    body = {"campaignName": name, "agentId": "agent-dash", "isScheduledCall": False,
            "contacts": [{"phone_number": f"+9198{start + i:08d}", "name": f"Contact {i}"} for i in range(n)], **fields}
    resp = await dash.http.post("/uploadCampaignDataAndRun", json=body, headers=dash.headers())
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]["campaign"]["campaignId"]


async def campaign(dash, cid: str) -> dict:
    resp = await dash.http.get(f"/campaigns/{cid}", headers=dash.headers())
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- served, offline, strict ---------------------------------------------------------------------


async def test_served_offline_with_strict_headers_and_packaged(dash):
    page = await dash.http.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"

    # Every file the page loads comes from this origin, and none of them names another.
    referenced = set(re.findall(r'(?:src|href)="(dashboard/static/[^"]+)"', page.text))
    referenced |= {f"dashboard/static/{m}" for f in STATIC_DIR.glob("*.js")
                   for m in re.findall(r'from "\./([^"]+)"', f.read_text())}
    assert {"dashboard/static/app.js", "dashboard/static/csv.js", "dashboard/static/app.css"} <= referenced
    for path in sorted(referenced):
        asset = await dash.http.get("/" + path)
        assert asset.status_code == 200, path
        assert asset.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
    for f in STATIC_DIR.iterdir():
        text = f.read_text()
        assert not re.search(r"(?:src|href|import|url)\s*[=(]?\s*[\"']?(?:https?:)?//", text), f.name
    assert (await dash.http.get("/dashboard/")).headers.get("location") == "/dashboard"

    # The rest of the API is as it was: no dashboard policy on its answers, no page without a key.
    api = await dash.http.get("/getCampaignStatuses", headers=dash.headers())
    assert api.status_code == 200 and "content-security-policy" not in api.headers
    assert (await dash.http.get("/getCampaignStatuses")).status_code == 401

    # An installed package carries the files: pyproject's package data names every one of them.
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    for f in STATIC_DIR.iterdir():
        relative = f.relative_to(ROOT / "api").as_posix()
        assert any(fnmatch(relative, pattern) for pattern in data), relative


async def test_csv_reader_in_the_browser(page: Page):
    """The page's own CSV reader (csv.js), run by Chromium on the awkward cases."""
    await page.goto("/dashboard")
    out = await page.evaluate(r'''async () => {
        const { parseCsv, csvToContacts } = await import("/dashboard/static/csv.js");
        const rows = parseCsv('\ufeffa,b,c\r\n"x, y","say ""hi""",\r\n"two\nlines",z,""\n\n');
        const c = csvToContacts('\ufeffName,Mobile,E-mail,Company,timezone,scheduledCallDateTime\n'
            + '"Doe, John",+91 98000 00001,,"Acme, ""the"" Corp",Asia/Kolkata,2030-01-17T14:00:00Z\n'
            + ',,,,,\n'
            + 'No Phone,,,X,,\n'
            + 'Ann,+919800000002,ann@example.com,,,\n');
        let missing = null;
        try { csvToContacts('name,email\nA,a@example.com\n'); } catch (e) { missing = e.message; }
        let open = null;
        try { parseCsv('a\n"never closed'); } catch (e) { open = e.message; }
        return { rows, c, missing, open, phone: csvToContacts('PHONE\n+1 415 555 0100\n').contacts };
    }''')
    assert out["rows"] == [["a", "b", "c"], ["x, y", 'say "hi"', ""], ["two\nlines", "z", ""]]
    c = out["c"]
    assert c["contacts"] == [
        {"name": "Doe, John", "phone_number": "+91 98000 00001", "timezone": "Asia/Kolkata",
         "scheduledCallDateTime": "2030-01-17T14:00:00Z", "custom_data": {"Company": 'Acme, "the" Corp'}},
        {"name": "Ann", "phone_number": "+919800000002", "custom_data": {"E-mail": "ann@example.com"}},
    ]
    assert c["sourceRows"] == [2, 5] and c["errors"] == [{"row": 4, "message": "no phone number in column 'Mobile'"}]
    assert c["columns"]["phone_number"] == "Mobile" and c["customColumns"] == ["E-mail", "Company"]
    assert "no phone column" in out["missing"] and "phone_number, phone, number, mobile" in out["missing"]
    assert "not closed" in out["open"]
    assert out["phone"] == [{"phone_number": "+1 415 555 0100"}]
    page.console.assert_clean()


# --- sign-in -------------------------------------------------------------------------------------


async def test_sign_in_keeps_the_key_in_the_session_only(page: Page):
    await page.goto("/dashboard")
    await page.fill("#api-key", "not-a-key")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#signin-error .message")).to_contain_text("UNAUTHORIZED")
    assert await page.evaluate("sessionStorage.length") == 0
    await shot(page, "sign-in.png")

    await page.fill("#api-key", API_KEY)
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#campaigns")).to_be_visible()
    assert await page.evaluate("Object.values(sessionStorage)") == [API_KEY]
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("document.cookie") == ""
    await page.reload()  # the session survives a reload of the tab
    await expect(page.locator("#campaigns")).to_be_visible()

    await page.click("#sign-out")
    await expect(page.locator("#api-key")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0

    # A key the API stops taking while a page polls: back to the sign-in, with the API's word.
    await page.evaluate("sessionStorage.setItem('campaignEngine.apiKey', 'revoked-key')")
    await page.goto("/dashboard#/campaigns")
    await expect(page.locator("#signin-error .message")).to_contain_text("UNAUTHORIZED")
    assert await page.evaluate("sessionStorage.length") == 0
    page.console.assert_clean(r"401 \(Unauthorized\)")


# --- a campaign from a CSV, to 100% --------------------------------------------------------------


async def test_upload_csv_and_watch_progress_reach_100(page: Page, dash):
    name = f"Dashboard upload {uuid.uuid4().hex[:6]}"
    rows = [("Doe, John", "+91 98000 10001", "Acme, \"the\" Corp", "50000"),
            ("Ann", "+919800010002", "Globex", ""),
            ("Bo", "+919800010003", "Initech", "7"),
            ("Cy", "+919800010004", "Umbrella", "12"),
            ("Di", "+919800010005", "Hooli", "99"),
            ("Ed", "+919800010006", "Stark", "1")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["Name", "Mobile", "company", "deal_value"])
    writer.writerows(rows)
    await sign_in(page)
    await page.click("nav a[data-nav=new]")
    await page.fill("#campaign-name-input", name)
    await page.fill("#agent-id-input", "agent-dash")
    await page.set_input_files("#csv-file", csv_file("\ufeff" + buf.getvalue()))
    await expect(page.locator("#csv-summary")).to_contain_text("6 contact(s) read")
    await expect(page.locator("#csv-summary")).to_contain_text("phone column “Mobile”")
    await expect(page.locator("#csv-summary")).to_contain_text("custom_data: company, deal_value")
    await page.fill("#max-concurrent", "3")
    await page.check("#redial-enabled")
    await page.fill("#max-attempts", "2")
    await page.fill("#retry-intervals", "1")
    await shot(page, "new-campaign.png")
    await page.click("#create-button")

    # The campaign's page, updated in place by polling: the marker set now survives to 100%.
    await expect(page.locator("#campaign-name")).to_have_text(name)
    await expect(page.locator("#flash .message.ok")).to_contain_text("created and started")
    await page.evaluate("window.__notReloaded = true")
    await expect(page.locator("#campaign-percentage")).to_have_text("100.0%", timeout=SLOW)
    await expect(page.locator("#campaign-status .badge")).to_have_text("completed", timeout=SLOW)
    assert await page.evaluate("window.__notReloaded") is True
    assert await page.locator("#campaign-progress").evaluate("p => p.value") == 100
    cid = page.url.rsplit("/", 1)[-1]
    state = await campaign(dash, cid)
    assert state["status"] == "completed" and state["total_contacts"] == 6 and state["percentage"] == 100
    await expect(page.locator("#counts-state tr[data-key=done] td.num")).to_have_text("6")
    await expect(page.locator("#stat-calls .value")).to_have_text(str(state["calls_placed"]))
    await expect(page.locator("#outcome-chart svg path[data-outcome]").first).to_be_attached(timeout=SLOW)
    ended = sum(state["outcome_counts"].values())
    await expect(page.locator("#outcome-chart")).to_have_attribute("data-points", str(ended), timeout=SLOW)

    # The CSV's columns arrived: the quoted comma and quotes in custom_data, the name, the number.
    export = await dash.http.get("/downloadCampaignStats", params={"campaign_id": cid}, headers=dash.headers())
    first = next(r for r in csv.DictReader(io.StringIO(export.text)) if r["phone_number"] == "+919800010001")
    assert first["name"] == "Doe, John"
    assert first["custom_data"] == '{"company":"Acme, \\"the\\" Corp","deal_value":"50000"}'

    # A contact's attempts: outcome, duration, recording link, as the store has them.
    row = page.locator("#contacts tr[data-phone='+919800010001']")
    await expect(row.locator(".contact-name")).to_have_text("Doe, John")  # from the export
    await row.locator("button[data-action=attempts]").click()
    attempts = page.locator("#contacts tr.attempts tr.attempt")
    calls = [r for r in csv.DictReader(io.StringIO(export.text)) if r["phone_number"] == "+919800010001"]
    await expect(attempts).to_have_count(len(calls))
    await expect(attempts.first.locator("td.outcome")).to_have_text(calls[0]["outcome"])
    if calls[0]["recording_url"]:
        await expect(attempts.first.locator("a")).to_have_attribute("href", calls[0]["recording_url"])
    await shot(page, "campaign-completed.png")

    # Contacts filtered by their final outcome, as the API counts them.
    await page.select_option("#contact-filter", "completed")
    answered = state["by_disposition"].get("completed", 0)
    await expect(page.locator("#contacts tbody tr[data-index]")).to_have_count(answered)
    await expect(page.locator("#contacts tbody td.disposition")).to_have_text(["completed"] * answered)
    await page.select_option("#contact-filter", "")
    await expect(page.locator("#contacts tbody tr[data-index]")).to_have_count(6)

    # Exports, fetched with the key and handed to the browser as downloads.
    async with page.expect_download() as info:
        await page.click("#export-csv")
    download = await info.value
    assert download.suggested_filename == f"{cid}.csv"
    assert Path(await download.path()).read_text().startswith("campaign_id,contact_index,phone_number")
    async with page.expect_download() as info:
        await page.click("#export-xlsx")
    download = await info.value
    assert download.suggested_filename == f"{cid}.xlsx"
    assert Path(await download.path()).read_bytes()[:2] == b"PK"

    # The list: status, full bar, calls placed, filtered by status.
    await page.click("nav a[data-nav=campaigns]")
    listed = page.locator(f"#campaigns tr[data-campaign-id='{cid}']")
    await expect(listed.locator(".badge")).to_have_text("completed")
    await expect(listed.locator(".pct")).to_have_text("100.0%")
    await expect(listed.locator("td.calls")).to_have_text(str(state["calls_placed"]))
    await page.select_option("#status-filter", "paused")
    await expect(page.locator("#no-campaigns")).to_be_visible()
    await expect(listed).to_have_count(0)
    await page.select_option("#status-filter", "completed")
    await expect(listed).to_have_count(1)
    page.console.assert_clean()


# --- pause, resume, remove, cancel ---------------------------------------------------------------


async def test_pause_resume_remove_and_cancel_a_running_campaign(page: Page, dash):
    # One call at a time, 40 contacts: about half a second each, so it is running throughout.
    cid = await create_by_api(dash, 40, "Dashboard controls", start=20000, maxConcurrentCalls=1,
                              redialConfig={"enabled": True, "maxAttempts": 2, "retryIntervals": [3600]})
    await sign_in(page)
    await page.goto(f"/dashboard#/campaigns/{cid}")
    calls = page.locator("#stat-calls .value")
    await expect(calls).not_to_have_text(re.compile(r"^0$"), timeout=SLOW)
    await expect(page.locator("#campaign-status .badge")).to_have_text("in_progress")
    await expect(page.locator("#stat-live .value")).to_contain_text("/ 1")
    await expect(page.locator("#outcome-chart svg")).to_be_attached(timeout=SLOW)
    await shot(page, "campaign-running.png")

    await page.click("#pause-button")
    await expect(page.locator("#campaign-status .badge")).to_have_text("paused")
    await expect(page.locator("#flash .message.ok")).to_contain_text("Paused")
    assert (await campaign(dash, cid))["status"] == "paused"
    await expect(page.locator("#resume-button")).to_be_visible()
    await expect(page.locator("#pause-button")).to_have_count(0)

    # While paused nobody is dialled: remove a contact waiting in the queue, from the second page.
    await page.click("#next-page")
    await expect(page.locator("#page-info")).to_have_text("26–40 of 40")
    queued = page.locator("#contacts tr[data-state=queued]").first
    phone = await queued.get_attribute("data-phone")
    index = int(await queued.get_attribute("data-index"))
    assert index >= 25
    row = page.locator(f"#contacts tr[data-phone='{phone}']")
    await row.locator("button[data-action=remove]").click()
    await expect(row).to_have_attribute("data-state", "removed")
    await expect(page.locator("#flash .message.ok")).to_contain_text(phone)
    contacts = await dash.http.get(f"/campaigns/{cid}/contacts", params={"status": "removed"}, headers=dash.headers())
    assert [c["phone_number"] for c in contacts.json()["contacts"]] == [phone]
    await page.select_option("#contact-filter", "removed")
    await expect(page.locator("#contacts tbody tr")).to_have_count(1)
    await expect(page.locator("#page-info")).to_have_text("1–1 of 1")
    await shot(page, "campaign-paused.png")

    # Append from a CSV while paused: one new number, one already in the campaign, one row
    # without a number (left out by the page).
    await page.set_input_files("#append-file", csv_file("number,name\n+919800029999,New\n+919800020000,Again\n,None\n"))
    await page.click("#append-button")
    summary = page.locator("#append-summary")
    await expect(summary).to_contain_text("1 contact(s) appended, 1 already in the campaign, 1 refused")
    await expect(summary.locator("li")).to_have_text(["file row 4: no phone number in column 'number'"])
    assert (await campaign(dash, cid))["total_contacts"] == 41

    # The list shows it paused, live, beside the others; its link leads back.
    await page.click("nav a[data-nav=campaigns]")
    listed = page.locator(f"#campaigns tr[data-campaign-id='{cid}']")
    await expect(listed.locator(".badge")).to_have_text("paused")
    await expect(listed.locator(".pct")).not_to_have_text("100.0%")
    await shot(page, "campaigns.png")
    await listed.locator("a").click()
    await expect(page.locator("#campaign-status .badge")).to_have_text("paused")
    paused_calls = (await campaign(dash, cid))["calls_placed"]

    await page.click("#resume-button")
    await expect(page.locator("#campaign-status .badge")).to_have_text("in_progress")
    await wait_for(lambda: campaign(dash, cid), lambda c: c["calls_placed"] > paused_calls, timeout=60,
                   what="a call after the resume")
    await expect(calls).not_to_have_text(str(paused_calls), timeout=SLOW)

    await page.click("#cancel-button")
    await expect(page.locator("#campaign-status .badge")).to_have_text("canceled", timeout=SLOW)
    assert (await campaign(dash, cid))["status"] == "canceled"
    await expect(page.locator("#cancel-button")).to_have_count(0)
    await expect(page.locator("#append")).to_be_hidden()
    await expect(page.locator("#counts-disposition tr[data-key=removed] td.num")).to_have_text("1")
    page.console.assert_clean()


# --- the API's errors, shown -----------------------------------------------------------------------


async def test_error_envelopes_are_shown(page: Page, dash):
    await sign_in(page)
    await page.click("nav a[data-nav=new]")
    await page.fill("#campaign-name-input", "Bad rows")
    await page.fill("#agent-id-input", "agent-dash")
    await page.set_input_files("#csv-file", csv_file("email,name\nx@example.com,X\n"))
    await expect(page.locator("#csv-preview .message.error")).to_contain_text("no phone column")

    await page.set_input_files("#csv-file", csv_file("phone,name\n+919800030001,Fine\n\"12345\",\"Bad, number\"\n"))
    await expect(page.locator("#csv-summary")).to_contain_text("2 contact(s) read")
    await page.click("#create-button")
    box = page.locator("#new-result .message.error")
    await expect(box).to_contain_text("BAD_REQUEST")
    await expect(box.locator("li")).to_contain_text(["row 1 (file row 3), contacts[1].phone_number:"])
    await shot(page, "error.png")
    listed = await dash.http.get("/getCampaignStatuses", headers=dash.headers())
    assert "Bad rows" not in {c["campaign_name"] for c in listed.json()["campaigns"]}

    # A campaign that is not there: the envelope's message on the page.
    await page.goto("/dashboard#/campaigns/CAMP-NOPE-1")
    await expect(page.locator("#load-error .message.error")).to_contain_text("NOT_FOUND")
    page.console.assert_clean(r"400 \(Bad Request\)", r"404 \(Not Found\)")


# --- a draft, started from its page ----------------------------------------------------------------


async def test_draft_from_csv_keeps_valid_rows_and_starts(page: Page, dash):
    await sign_in(page)
    await page.click("nav a[data-nav=new]")
    await page.fill("#campaign-name-input", "Dashboard draft")
    await page.fill("#agent-id-input", "agent-dash")
    await page.set_input_files("#csv-file", csv_file(
        "phone_number,name,email\n+919800040001,One,one@example.com\n+919800040002,Two,not-an-email\n"
        "+919800040003,Three,\n"))
    await expect(page.locator("#csv-summary")).to_contain_text("3 contact(s) read")
    await page.uncheck("#run-now")
    await page.click("#create-button")

    # The draft keeps the valid rows and names the refused one by its row in the file.
    await expect(page.locator("#campaign-status .badge")).to_have_text("draft")
    await expect(page.locator("#flash .message.error")).to_contain_text("1 row(s) were refused")
    await expect(page.locator("#flash .message.error li")).to_contain_text(["file row 3, contacts[1].email"])
    cid = page.url.rsplit("/", 1)[-1]
    assert (await campaign(dash, cid))["total_contacts"] == 2
    await expect(page.locator("#page-info")).to_have_text("1–2 of 2")

    await page.click("#start-button")
    await expect(page.locator("#campaign-percentage")).to_have_text("100.0%", timeout=SLOW)
    await expect(page.locator("#campaign-status .badge")).to_have_text("completed", timeout=SLOW)
    assert (await campaign(dash, cid))["status"] == "completed"
    page.console.assert_clean()


async def test_a_file_over_1000_rows_goes_in_pages(page: Page, dash):
    """The API takes 1,000 contacts a request: a larger file becomes a draft and appends."""
    lines = ["mobile,name"] + [f"+9198{50000 + i:08d},Row {i}" for i in range(1001)]
    await sign_in(page)
    await page.click("nav a[data-nav=new]")
    await page.fill("#campaign-name-input", "Dashboard 1001")
    await page.fill("#agent-id-input", "agent-dash")
    await page.set_input_files("#csv-file", csv_file("\n".join(lines) + "\n"))
    await expect(page.locator("#csv-summary")).to_contain_text("1,001 contact(s) read")
    await page.uncheck("#run-now")
    await page.click("#create-button")
    await expect(page.locator("#campaign-status .badge")).to_have_text("draft")
    await expect(page.locator("#flash .message.ok")).to_contain_text("(draft)")
    cid = page.url.rsplit("/", 1)[-1]
    assert (await campaign(dash, cid))["total_contacts"] == 1001
    await expect(page.locator("#page-info")).to_have_text("1–25 of 1,001")
    await page.click("#next-page")
    await expect(page.locator("#page-info")).to_have_text("26–50 of 1,001")
    await expect(page.locator("#contacts tbody tr").first).to_have_attribute("data-index", "25")
    await page.click("#prev-page")
    await expect(page.locator("#page-info")).to_have_text("1–25 of 1,001")
    page.console.assert_clean()


# --- compliance: the suppression list and the audit trail -------------------------------------------


async def test_suppression_list_add_look_up_remove(page: Page, dash):
    first, second = "+919877700001", "+919877700002"
    await sign_in(page)
    await page.click("nav a[data-nav=suppressions]")
    await expect(page.locator("#suppressions")).to_be_visible()
    await page.fill("#suppress-numbers", f"{first}\n {second} \n")
    await page.fill("#suppress-reason", "asked not to be called")
    await page.fill("#suppress-expires", "2030-01-17T12:00")
    await page.click("#suppress-add")
    await expect(page.locator("#flash .message.ok")).to_contain_text("2 number(s) received: 2 added")
    for phone in (first, second):
        row = page.locator(f"#suppressions tr[data-phone='{phone}']")
        await expect(row.locator("td.reason")).to_have_text("asked not to be called")
        await expect(row.locator("td.source")).to_have_text("api")
        await expect(row.locator("td.expires")).to_contain_text("2030")
    listed = (await dash.http.get("/suppressions", params={"phone_number": second}, headers=dash.headers())).json()
    assert listed["total"] == 1 and listed["suppressions"][0]["expires_at"].startswith("2030-01-17")

    # One number looked up: only its entry.
    await page.fill("#suppress-lookup", second)
    await page.click("#suppress-lookup-form button[type=submit]")
    await expect(page.locator("#suppressions tbody tr")).to_have_count(1)
    await expect(page.locator("#suppressions tbody tr")).to_have_attribute("data-phone", second)
    await page.click("#suppress-show-all")
    await expect(page.locator(f"#suppressions tr[data-phone='{first}']")).to_have_count(1)

    # Removed from its row: gone from the page and from the API's list.
    await page.locator(f"#suppressions tr[data-phone='{first}'] button[data-action=unsuppress]").click()
    await expect(page.locator("#flash .message.ok")).to_contain_text(f"{first} removed")
    await expect(page.locator(f"#suppressions tr[data-phone='{first}']")).to_have_count(0)
    await expect(page.locator(f"#suppressions tr[data-phone='{second}']")).to_have_count(1)
    gone = (await dash.http.get("/suppressions", params={"phone_number": first}, headers=dash.headers())).json()
    assert gone["total"] == 0

    # An invalid number refuses the request: the envelope, naming its line; nothing added.
    await page.fill("#suppress-numbers", "+919877700003\n12345")
    await page.click("#suppress-add")
    box = page.locator("#suppress-result .message.error")
    await expect(box).to_contain_text("BAD_REQUEST")
    await expect(box.locator("li")).to_contain_text(["line 2 (12345), phone_numbers[1]:"])
    none = (await dash.http.get("/suppressions", params={"phone_number": "+919877700003"}, headers=dash.headers()))
    assert none.json()["total"] == 0
    await shot(page, "suppressions.png")

    # Paged as the API pages it (25 a page, by next_cursor).
    more = [f"+91987770{i:04d}" for i in range(100, 130)]
    resp = await dash.http.post("/suppressions", json={"phone_numbers": more}, headers=dash.headers())
    assert resp.status_code == 200, resp.text
    await page.reload()
    await expect(page.locator("#suppress-page-info")).to_have_text("1–25 of 31")
    await page.click("#suppress-next")
    await expect(page.locator("#suppress-page-info")).to_have_text("26–31 of 31")
    await expect(page.locator("#suppressions tbody tr")).to_have_count(6)
    await expect(page.locator("#suppress-next")).to_be_disabled()
    await page.click("#suppress-prev")
    await expect(page.locator("#suppress-page-info")).to_have_text("1–25 of 31")
    page.console.assert_clean(r"400 \(Bad Request\)")


async def test_audit_trail_lists_pause_resume_and_suppression_events(page: Page, dash):
    cid = await create_by_api(dash, 6, "Dashboard audit", start=77000, maxConcurrentCalls=1)
    for step in ("pauseTheCampaign", "startCampaign"):
        resp = await dash.http.post(f"/{step}/{cid}", headers=dash.headers())
        assert resp.status_code == 200, resp.text
    await sign_in(page)
    await page.click("nav a[data-nav=audit]")
    await expect(page.locator("#audit")).to_be_visible()

    # Filtered by campaign: its events in the API's order, with the key's id and no key.
    await page.fill("#audit-campaign", cid)
    await page.click("#audit-filter button[type=submit]")
    rows = page.locator("#audit tbody tr")
    await expect(rows.locator("td.action")).to_have_text(
        ["campaign.created_and_started", "campaign.paused", "campaign.resumed"])
    await expect(rows.locator("td.campaign").first).to_have_text(cid)
    await expect(rows.locator("td.key").first).to_have_text(re.compile(r"^[0-9a-f]{16}$"))
    assert API_KEY not in await page.locator("#audit").inner_text()

    # A suppression change made in another tab shows up on the page by itself (polling).
    await page.fill("#audit-campaign", "")
    await page.fill("#audit-action", "suppression.added")
    await page.click("#audit-filter button[type=submit]")
    await expect(page.locator("#audit-action")).to_have_value("suppression.added")
    resp = await dash.http.post("/suppressions", json={"phone_numbers": ["+919877700009"], "reason": "audit test"},
                                headers=dash.headers())
    assert resp.status_code == 200, resp.text
    added = page.locator("#audit tbody tr[data-action='suppression.added']").filter(has_text="audit test")
    await expect(added).to_have_count(1)
    await expect(added.locator("td.details")).to_contain_text("+91 98xxxxxx09")
    await expect(page.locator("#audit tbody tr:not([data-action='suppression.added'])")).to_have_count(0)
    await shot(page, "audit.png")
    page.console.assert_clean()
