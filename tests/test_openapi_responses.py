"""The OpenAPI lists the error statuses each operation can answer (issue 16; schemathesis'
status_code_conformance in tests/test_schemathesis.py holds the answers to them)."""

from __future__ import annotations

from api.main import create_app
from campaign_engine.settings import Settings

BODY_OPERATIONS = {("post", "/uploadCampaignDataAndRun"), ("post", "/uploadCampaignData"),
                   ("post", "/campaigns/{campaign_id}/contacts"), ("put", "/updateCampaignData/{campaign_id}"),
                   ("post", "/campaigns/preflight")}


def operations():
    spec = create_app(Settings(campaign_api_keys="acme:k")).openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield method, path, set(op["responses"])


def test_every_authenticated_operation_documents_its_errors():
    seen = 0
    for method, path, statuses in operations():
        if path.startswith("/callbacks/"):
            assert {"200", "400", "403", "413"} <= statuses, (method, path, statuses)
            continue
        assert {"200", "400", "401", "429", "503"} <= statuses, (method, path, statuses)
        if (method, path) in BODY_OPERATIONS:
            assert {"408", "413", "415"} <= statuses, (method, path, statuses)
        if "{campaign_id}" in path:
            assert "404" in statuses, (method, path, statuses)
        seen += 1
    assert seen >= 18


def test_updating_a_campaign_documents_not_found_and_a_finished_campaign():
    statuses = {(m, p): s for m, p, s in operations()}[("put", "/updateCampaignData/{campaign_id}")]
    assert {"404", "409"} <= statuses
