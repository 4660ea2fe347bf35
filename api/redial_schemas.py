"""`redialConfig` on the wire: the simple form or the rule-based form, strictly.

Both forms travel in one object (`RedialConfigIn`): the simple one (`maxAttempts`,
`retryIntervals`) and the rule-based one (`callStatus` rules, `backoff`, `jitterRatio`,
...; see campaign_engine/policy/redial_rules.py). It is validated as one model, so every
error names its field (`redialConfig.retryIntervals[2]`, `redialConfig.callStatus[1].match`),
and documented as the union it is (`anyOf` the two forms). Unknown keys are refused, here and
in each rule, rather than ignored: a misspelt `maxAtempts` is a 400 naming it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from campaign_engine.policy.redial import MAX_ATTEMPTS_LIMIT, MAX_RETRY_INTERVAL_SECONDS
from campaign_engine.policy.redial_rules import MAX_INTERVAL_MINUTES, RuleBasedRedial


def reject_unknown_keys(data: Any, model: type[BaseModel]) -> Any:
    """`data` itself, or a validation error per key that `model` has no field for (each
    error located at its key). For domain models that stay lenient when they are read back
    from Temporal but are strict on the wire."""
    if isinstance(data, dict):
        known = {name for name in model.model_fields} | {f.alias for f in model.model_fields.values() if f.alias}
        unknown = [key for key in data if key not in known]
        if unknown:
            raise ValidationError.from_exception_data(model.__name__, [
                InitErrorDetails(type="extra_forbidden", loc=(key,), input=data[key]) for key in unknown])
    return data


def _alias(camel: str, snake: str) -> AliasChoices:
    return AliasChoices(camel, snake)


def _interval(value: int) -> int:
    if value <= 0:
        raise PydanticCustomError("bad_interval", "must be a positive number of seconds, got {v}", {"v": value})
    if value > MAX_RETRY_INTERVAL_SECONDS:
        raise PydanticCustomError("bad_interval", "is longer than 30 days ({v} s)", {"v": value})
    return value


class RedialRuleIn(BaseModel):
    """One rule: redial calls that ended with `match` after `intervalMinutes`."""

    model_config = ConfigDict(extra="forbid", title="RedialRule")

    match: str = Field(description="A call outcome (no-answer, busy, failed, voicemail) or a provider hang-up "
                       "cause in capitals (CALL_REJECTED)")
    intervalMinutes: float = Field(gt=0, le=MAX_INTERVAL_MINUTES, validation_alias=_alias(
        "intervalMinutes", "interval_minutes"), description="Wait before the redial (grows with `backoff`)")
    maxAttempts: int | None = Field(
        None, ge=1, le=MAX_ATTEMPTS_LIMIT, validation_alias=_alias("maxAttempts", "max_attempts"),
        description="Calls ending with this status after which it is no longer redialled; "
        "missing: only the overall maxAttempts applies")


SIMPLE_FIELDS = ("enabled", "maxAttempts", "retryIntervals")
RULE_FIELDS = ("callStatus", "terminalConditions", "backoff", "backoffMultiplier", "maxIntervalMinutes",
               "jitterRatio", "redialVoicemail", "honorCallbacks", "maxCallbacks")


class RedialConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    maxAttempts: int | None = Field(
        None, ge=1, le=MAX_ATTEMPTS_LIMIT, validation_alias=_alias("maxAttempts", "max_attempts"),
        description="Calls per contact, the first one included (3 = one call and two redials).",
    )
    retryIntervals: list[Annotated[int, AfterValidator(_interval)]] | None = Field(
        None, validation_alias=_alias("retryIntervals", "retry_intervals"),
        description="Seconds to wait before each redial; a short list repeats its last value; "
        "missing means 3600 before every redial.",
    )
    # The rule-based form (PUT /updateCampaignData, accepted on create too).
    callStatus: list[RedialRuleIn] | None = Field(
        None, validation_alias=_alias("callStatus", "call_status"),
        description="Rules by call status; a status without a rule is not redialled.")
    terminalConditions: list[str] | str | None = Field(
        None, validation_alias=_alias("terminalConditions", "terminal_conditions"),
        description="Outcomes, hang-up causes or analysis values after which a contact is never redialled.")
    backoff: str | None = Field(None, description="fixed (default) or exponential")
    backoffMultiplier: float | None = Field(
        None, ge=1, le=10, validation_alias=_alias("backoffMultiplier", "backoff_multiplier"),
        description="exponential: the n-th redial under a rule waits intervalMinutes * multiplier**(n-1)")
    maxIntervalMinutes: float | None = Field(
        None, gt=0, le=MAX_INTERVAL_MINUTES, validation_alias=_alias("maxIntervalMinutes", "max_interval_minutes"),
        description="Longest wait (default 30 days)")
    jitterRatio: float | None = Field(
        None, ge=0, le=0.9, validation_alias=_alias("jitterRatio", "jitter_ratio"),
        description="Each wait shortened by up to this fraction (0-0.9), the same for a contact and attempt every time")
    redialVoicemail: bool | None = Field(
        None, validation_alias=_alias("redialVoicemail", "redial_voicemail"),
        description="true: voicemail is redialled (its own rule, else the no-answer rule); false: never")
    honorCallbacks: bool | None = Field(
        None, validation_alias=_alias("honorCallbacks", "honor_callbacks"),
        description="Call back at the callback_date/callback_time the call's analysis asks for (default true)")
    maxCallbacks: int | None = Field(
        None, ge=0, le=MAX_ATTEMPTS_LIMIT, validation_alias=_alias("maxCallbacks", "max_callbacks"),
        description="Callbacks honoured per contact (default 2)")

    def rules(self) -> RuleBasedRedial | None:
        """The rule-based form (`callStatus` rules, backoff, ...) when the body uses it."""
        data: dict[str, Any] = {name: getattr(self, name) for name in RULE_FIELDS if getattr(self, name) is not None}
        if not data:
            return None
        if "callStatus" in data:
            data["callStatus"] = [rule.model_dump(exclude_none=True) for rule in data["callStatus"]]
        data["enabled"] = self.enabled
        if self.maxAttempts is not None:
            data["maxAttempts"] = self.maxAttempts
        return RuleBasedRedial.model_validate(data)

    @model_validator(mode="after")
    def _one_form(self) -> RedialConfigIn:
        if self.retryIntervals is not None and any(getattr(self, name) is not None for name in RULE_FIELDS):
            raise ValidationError.from_exception_data("RedialConfigIn", [InitErrorDetails(
                type=PydanticCustomError(
                    "mixed_redial_forms", "is the simple form's; with the rule-based form each callStatus "
                    "rule has its own intervalMinutes"),
                loc=("retryIntervals",), input=self.retryIntervals)])
        self.rules()  # a bad rule is a validation error of redialConfig
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        # Documented as the union it is: the simple form or the rule-based form.
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        properties = target.pop("properties")
        for key in ("type", "additionalProperties", "required"):
            target.pop(key, None)

        def form(title: str, names: tuple[str, ...], description: str) -> dict:
            return {"title": title, "description": description, "type": "object", "additionalProperties": False,
                    "properties": {name: properties[name] for name in names}}

        target["description"] = ("Redials, in one of two forms: simple (maxAttempts, retryIntervals) or "
                                 "rule-based (callStatus rules, backoff, jitter, voicemail, terminal conditions).")
        target["anyOf"] = [
            form("Simple redial configuration", SIMPLE_FIELDS,
                 "The same waits for every redialled status (no-answer, busy, failed)."),
            form("Rule-based redial configuration", ("enabled", "maxAttempts", *RULE_FIELDS),
                 "Redials by call status; the overall maxAttempts caps every call to a contact."),
        ]
        return schema
