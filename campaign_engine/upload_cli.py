"""`campaign-engine upload FILE.csv --name NAME --agent ID [--run] [--config FILE.json]`.

Sends a CSV or Excel file to the engine's REST API as `multipart/form-data` (the `file` part,
the campaign fields as one `config` JSON part: the --config file's fields, with --name and
--agent over them), with a progress bar of the bytes sent, then a spinner while the engine
validates and writes the rows. Without --run the campaign is a draft (POST
/uploadCampaignData, start it with POST /startCampaignv2/{id}); with --run it starts calling
(POST /uploadCampaignDataAndRun). Exit status: 0 done, 1 the engine refused the upload (its
message and the first row errors are printed), 2 the API could not be reached or no key.

The API is --url, else API_BASE_URL, else http://127.0.0.1:$API_PORT (what `up` serves); the
key is --api-key, else CAMPAIGN_API_KEY, else the key `up` generated in the data directory
(.data/api-key), else the first key of CAMPAIGN_API_KEYS.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from pathlib import Path
from typing import IO, Any

from campaign_engine.settings import Settings

UNREACHABLE = 2
REFUSED = 1
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def add_parser(sub: Any) -> None:
    up = sub.add_parser("upload", help="upload a CSV or xlsx file of contacts as a campaign (REST API)")
    up.add_argument("file", type=Path, help="the contacts: CSV (UTF-8) or .xlsx, the first row naming the columns")
    up.add_argument("--name", required=True, help="campaign name")
    up.add_argument("--agent", required=True, help="agent id")
    up.add_argument("--run", action="store_true", help="start calling at once (else a draft)")
    up.add_argument("--config", type=Path, help="JSON file of further campaign fields (redialConfig, ...)")
    up.add_argument("--url", help="the API (default API_BASE_URL, else http://127.0.0.1:$API_PORT)")
    up.add_argument("--api-key", help="API key (default CAMPAIGN_API_KEY, else the key `up` keeps in .data/api-key)")
    up.add_argument("--idempotency-key", help="Idempotency-Key header: a retry with it creates nothing twice")
    up.add_argument("--json", action="store_true", help="print the engine's answer as JSON")


def _api_key(args: argparse.Namespace, settings: Settings) -> str | None:
    if args.api_key:
        return args.api_key
    if os.environ.get("CAMPAIGN_API_KEY"):
        return os.environ["CAMPAIGN_API_KEY"]
    key_file = settings.data_dir / "api-key"
    if key_file.exists():
        return key_file.read_text().strip()
    keys = list(settings.api_keys().values()) if settings.api_key_digests() else []
    return keys[0] if keys else None


class _Counting:
    """The file, advancing the progress bar as httpx reads it."""

    def __init__(self, file: IO[bytes], advance) -> None:
        self.file = file
        self.advance = advance

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.advance(len(chunk))
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def _config_fields(args: argparse.Namespace, console: Any) -> dict[str, Any] | None:
    """The campaign's settings from --config (a JSON object), or None (said why)."""
    if not args.config:
        return {}
    try:
        fields = json.loads(args.config.read_text())
    except (OSError, ValueError) as err:
        console.print(f"--config {args.config}: not a JSON file ({err})")
        return None
    if not isinstance(fields, dict):
        console.print(f"--config {args.config}: not a JSON object")
        return None
    return fields


def run_upload(args: argparse.Namespace, settings: Settings) -> int:
    import httpx
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not args.file.is_file():
        console.print(f"no such file: {args.file}")
        return REFUSED
    fields = _config_fields(args, console)
    if fields is None:
        return REFUSED
    fields.update(campaignName=args.name, agentId=args.agent)
    base = (args.url or os.environ.get("API_BASE_URL") or f"http://127.0.0.1:{settings.api_port}").rstrip("/")
    key = _api_key(args, settings)
    if not key:
        console.print("no API key: give --api-key, or set CAMPAIGN_API_KEY")
        return UNREACHABLE
    path = "/uploadCampaignDataAndRun" if args.run else "/uploadCampaignData"
    headers = {"x-api-key": key}
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    media = XLSX if args.file.suffix.lower() == ".xlsx" else (mimetypes.guess_type(args.file.name)[0] or "text/csv")
    size = args.file.stat().st_size
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(f"sending {args.file.name}", total=size)
        with args.file.open("rb") as raw, httpx.Client(timeout=httpx.Timeout(30.0, read=3600.0)) as http:
            counting = _Counting(raw, lambda n: bar.update(
                task, advance=n, description=f"sending {args.file.name}" if bar.tasks[0].completed + n < size
                else "the engine is checking and writing the rows"))
            try:
                resp = http.post(base + path, headers=headers,
                                 files={"file": (args.file.name, counting, media),  # type: ignore[dict-item]
                                        "config": (None, json.dumps(fields), "application/json")})
            except httpx.HTTPError as err:
                bar.stop()
                console.print(f"the API at {base} cannot be reached: {err}")
                return UNREACHABLE
        bar.update(task, completed=size,
                   description=f"{args.file.name}: " + ("uploaded" if resp.is_success else "refused"))
    try:
        answer = resp.json()
    except ValueError:
        answer = {"message": resp.text[:500]}
    if args.json:
        print(json.dumps(answer, indent=2))
    if not resp.is_success:
        console.print(f"[red]{resp.status_code} {answer.get('error', '')}[/red]: {answer.get('message', '')}")
        for detail in (answer.get("details") or [])[:10]:
            console.print(f"  row {detail.get('row', '-')}, {detail.get('field', '')}: {detail.get('message', '')}")
        return REFUSED
    if not args.json:
        print(_summary(answer, args.run))
    return 0


def _summary(answer: dict, run: bool) -> str:
    if run:
        data = answer["data"]
        campaign, contacts = data["campaign"], data["contacts"]
        return (f"campaign {campaign['campaignId']} ({campaign['campaignName']}): {campaign['status']}\n"
                f"  contacts received {contacts['received']}, accepted {contacts['accepted']}, "
                f"duplicates merged {contacts['duplicates_merged']}\n"
                f"  estimated completion {data['execution_status']['estimated_completion']}")
    lines = [f"campaign {answer['campaign_id']} ({answer['campaign_name']}): {answer['status']}",
             f"  uploaded {answer['uploaded_count']}, refused {answer['failed_count']}, "
             f"duplicates {answer['duplicate_count']}, total {answer['total_contacts']}"]
    for err in answer.get("errors", [])[:10]:
        lines.append(f"  row {err['row']}, {err['field']}: {err['message']}")
    if answer["status"] == "draft":
        lines.append(f"  start it with POST /startCampaignv2/{answer['campaign_id']}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: campaign-engine upload")
