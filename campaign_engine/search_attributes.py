"""Custom search attributes: how campaigns are listed and filtered in the Temporal UI and CLI.

Registered by `campaign-engine up` (dev server `--search-attribute`), by the test fixtures and,
in production, by `temporal operator search-attribute create` (see docker-compose.yml).
No personal data ever goes into them.
"""

from temporalio.common import SearchAttributeKey

CAMPAIGN_STATUS = SearchAttributeKey.for_keyword("CampaignStatus")
CAMPAIGN_ID = SearchAttributeKey.for_keyword("CampaignId")
AGENT_ID = SearchAttributeKey.for_keyword("AgentId")
TENANT_ID = SearchAttributeKey.for_keyword("TenantId")

ALL = [CAMPAIGN_STATUS, CAMPAIGN_ID, AGENT_ID, TENANT_ID]


def dev_server_args() -> list[str]:
    """`--search-attribute Name=Keyword` arguments for `temporal server start-dev`."""
    args: list[str] = []
    for key in ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args
