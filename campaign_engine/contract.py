"""The Temporal contract, named once: activity, signal, update and query names.

Workflows call activities and signal each other by these names; the API and the callbacks
use them too, so a rename is one edit here (and a workflow change to roll out, see README).
"""

from __future__ import annotations

from enum import StrEnum


class Activity(StrEnum):
    PLACE_CALL = "place_call"
    FETCH_CALL_STATUS = "fetch_call_status"
    DELIVER_WEBHOOK = "deliver_webhook"
    RECORD_CAMPAIGN_CHANGES = "record_campaign_changes"
    LOAD_LAUNCH_PAGE = "load_launch_page"
    FIND_SILENT_CONTACTS = "find_silent_contacts"
    SIGNAL_OPEN_CONTACTS = "signal_open_contacts"


class CampaignSignal(StrEnum):
    """Contacts to their campaign."""

    DIAL_REQUEST = "dial_request"
    CONTACT_REPORT = "contact_report"
    PROVIDER_BLOCKED = "provider_blocked"


class ContactSignal(StrEnum):
    """The campaign (and the provider's callbacks) to a contact."""

    DIAL_GRANT = "dial_grant"
    POLICY_UPDATE = "policy_update"
    CALL_OUTCOME = "call_outcome"
    PING = "ping"
    REPORT_BY_SIGNAL = "report_by_signal"


class CampaignUpdate(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    UPDATE_REDIAL = "update_redial"
    CONTACTS_APPENDED = "contacts_appended"
    REMOVE_CONTACT = "remove_contact"


class CampaignQuery(StrEnum):
    PROGRESS = "progress"
    CONFIG = "config"


class ContactQuery(StrEnum):
    STATUS = "status"
