"""Every example body of README.md runs as printed against the real API (issue 17).

The ```json blocks are read from README.md itself and sent to the endpoint their section
documents; the curl commands of the ```bash blocks are run as they are written (their method,
path, headers and body, `$KEY` the test's key). A new JSON block in a section this test does not
know fails it: give the block an endpoint here.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from tests.conftest import API_KEY

README = Path(__file__).resolve().parent.parent / "README.md"

# The smallest body of an upload: what the dialing-policy fields are added to.
MINIMAL_UPLOAD = {"campaignName": "README dialing policy", "agentId": "agent-readme",
                  "contacts": [{"phone_number": "+919876543210", "name": "John Doe"}]}


def readme_blocks(language: str) -> list[tuple[str, str]]:
    """(the heading above it, the block's text) for each ```language block of README.md."""
    heading, out, block = "", [], None
    for line in README.read_text().splitlines():
        if block is None and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif block is None and line.strip() == f"```{language}":
            block = []
        elif block is not None and line.strip() == "```":
            out.append((heading, "\n".join(block)))
            block = None
        elif block is not None:
            block.append(line)
    return out


def curl_commands() -> list[list[str]]:
    """Each curl command of the ```bash blocks, as the shell splits it (a quoted body may span lines)."""
    commands: list[list[str]] = []
    for _, text in readme_blocks("bash"):
        if "curl " not in text:
            continue
        current = None
        for token in shlex.split(text.replace("\\\n", " "), comments=True):
            if token == "curl":
                current = [token]
                commands.append(current)
            elif token in ("&&", ";", "|"):
                current = None
            elif current is not None:
                current.append(token)
    return commands


# The file the README's file uploads name (`-F file=@contacts.csv`, `--data-binary @contacts.csv`).
SAMPLE_FILES = {"contacts.csv": "phone_number,name,email,company\n+919876543210,John Doe,john@example.com,Acme Corp\n"}


def parse_curl(argv: list[str], files: dict | None = None) -> tuple[str, str, dict[str, str], str | None]:
    """The request of a curl command; its `-F` parts go into `files` (name -> (filename, content))."""
    method, url, headers, body = "GET", None, {}, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-F":
            name, _, value = next(args).partition("=")
            part = (value[1:], SAMPLE_FILES[value[1:]]) if value.startswith("@") else (None, value)
            files[name] = part
            method = "POST" if method == "GET" else method
        elif arg == "--data-binary":
            value = next(args)
            body = SAMPLE_FILES[value[1:]] if value.startswith("@") else value
            method = "POST" if method == "GET" else method
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip().replace("$KEY", API_KEY)
        elif arg in ("-d", "--data"):
            body = next(args)
            method = "POST" if method == "GET" else method
        else:
            url = arg
    assert url and url.startswith("http://127.0.0.1:8000/"), argv
    return method, url.removeprefix("http://127.0.0.1:8000"), headers, body


async def test_every_json_example_of_the_readme_is_accepted_by_the_api(engine):
    blocks = readme_blocks("json")
    assert blocks, "README.md has no ```json block"
    sent = 0
    for heading, text in blocks:
        example = json.loads(text)
        if heading.startswith("Dialing policy"):
            # Optional fields of both upload bodies: each takes them as printed, the preflight
            # checks them, and the redial configuration is the one PUT /updateCampaignData takes.
            run = await engine.http.post("/uploadCampaignDataAndRun", json={**MINIMAL_UPLOAD, **example},
                                         headers=engine.headers())
            assert run.status_code == 200, run.text
            redial = run.json()["data"]["redial_config"]
            assert redial["enabled"] is True and redial["maxAttempts"] == 4
            draft = await engine.http.post("/uploadCampaignData", headers=engine.headers(), json={
                "campaign_name": "README draft", "agent_id": "agent-readme", "contacts": MINIMAL_UPLOAD["contacts"],
                **example})
            assert draft.status_code == 200, draft.text
            assert draft.json()["failed_count"] == 0
            preflight = await engine.http.post("/campaigns/preflight", json={**MINIMAL_UPLOAD, **example},
                                               headers=engine.headers())
            assert preflight.status_code == 200 and preflight.json()["valid"] == 1, preflight.text
            update = await engine.http.put(f"/updateCampaignData/{draft.json()['campaign_id']}",
                                           json={"redialConfig": example["redialConfig"]}, headers=engine.headers())
            assert update.status_code == 200, update.text
            rules = update.json()["redialConfig"]
            assert [r["maxAttempts"] for r in rules["callStatus"]] == [3, None] and rules["maxAttempts"] == 4
            for cid in (run.json()["data"]["campaign"]["campaignId"], draft.json()["campaign_id"]):
                await engine.http.post(f"/campaigns/{cid}/cancel", headers=engine.headers())
            sent += 1
        else:
            raise AssertionError(f"README.md has a JSON example under '{heading}' that this test does not send: "
                                 "add the endpoint it is for")
    assert sent == len(blocks)


async def test_every_curl_command_of_the_readme_runs_as_printed(engine):
    commands = curl_commands()
    assert commands, "README.md has no curl example"
    for argv in commands:
        files: dict = {}
        method, path, headers, body = parse_curl(argv, files)
        if files:
            resp = await engine.http.request(method, path, headers=headers, files=files)
        else:
            resp = await engine.http.request(method, path, headers=headers, content=body)
        assert resp.status_code == 200, (argv, resp.text)
        out = resp.json()
        assert out["success"] is True, out
        if path == "/uploadCampaignDataAndRun":
            assert out["data"]["campaign"]["status"] == "in_progress"
            await engine.http.post(f"/campaigns/{out['data']['campaign']['campaignId']}/cancel",
                                   headers=engine.headers())
