"""Typed payloads that travel inside events: the features service's analysis report (the public shape
``spendsense analyze --format json`` prints) and the account kinds offer eligibility needs.

Groups are open (``extra="allow"``): a producer may add signals without breaking consumers, and the
report round-trips whole; the fields named here are the ones consumers rely on.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


# The fields of each group, without a config: the open report models below and a consumer's own closed
# models (the recommender's decision snapshot ignores what it does not use) both build on them.


class CardFields(BaseModel):
    name: str | None = None
    mask: str | None = None
    balance: float | None = None
    limit: float | None = None
    utilization: float | None = None
    apr: float | None = None
    minimum_payment: float | None = None
    interest_charges: float | None = None
    overdue: bool | None = None
    minimum_payment_only: bool | None = None


class CreditFields(BaseModel):
    max_utilization: float | None = None
    card_count: int | None = None
    interest_charges: float | None = None
    minimum_payment_only: bool | None = None
    overdue: bool | None = None


class PriceChangeFields(BaseModel):
    from_amount: float | None = Field(None, alias="from")
    to_amount: float | None = Field(None, alias="to")
    changed_on: date | None = Field(None, alias="date")


class MerchantFields(BaseModel):
    merchant: str
    cadence: str | None = None
    typical_amount: float | None = None
    monthly_amount: float | None = None
    last_date: date | None = None


class SubscriptionFields(BaseModel):
    recurring_merchant_count: int | None = None
    monthly_recurring_spend: float | None = None
    subscription_share: float | None = None


class SavingsFields(BaseModel):
    balance: float | None = None
    net_inflow: float | None = None
    net_inflow_monthly: float | None = None
    growth_rate: float | None = None
    emergency_fund_months: float | None = None


class IncomeFields(BaseModel):
    pay_frequency: str | None = None
    median_pay_gap_days: float | None = None
    cash_flow_buffer_months: float | None = None
    checking_balance: float | None = None
    income_total: float | None = None
    variability: float | None = None


class CashFlowFields(BaseModel):
    income: float | None = None
    spending: float | None = None
    monthly_spending: float | None = None
    net: float | None = None
    overdraft_fee_count: int | None = None


class CardSignal(CardFields, _Open):
    account_id: str | None = None


class CreditSignals(CreditFields, _Open):
    cards: list[CardSignal] = []


class PriceChange(PriceChangeFields, _Open):
    pass


class RecurringMerchant(MerchantFields, _Open):
    price_change: PriceChange | None = None


class SubscriptionSignals(SubscriptionFields, _Open):
    recurring_merchants: list[RecurringMerchant] = []
    streams: list[dict[str, Any]] = Field(default=[], description="Plaid-shaped recurring streams")


class SavingsSignals(SavingsFields, _Open):
    pass


class IncomeSignals(IncomeFields, _Open):
    pass


class CashFlowSignals(CashFlowFields, _Open):
    pass


class WindowSignals(_Open):
    window_days: int | None = None
    credit: CreditSignals = CreditSignals()
    subscriptions: SubscriptionSignals = SubscriptionSignals()
    savings: SavingsSignals = SavingsSignals()
    income: IncomeSignals = IncomeSignals()
    cash_flow: CashFlowSignals = CashFlowSignals()


class PersonaMatch(_Open):
    id: str
    criteria: list[str] = []


class PersonaResult(_Open):
    primary: str | None = None
    matched: list[PersonaMatch] = []


class WindowReport(_Open):
    persona: PersonaResult = PersonaResult()
    signals: WindowSignals = WindowSignals()


class AnalysisReport(_Open):
    """One user's signals and personas for each window (``30d``, ``180d``), as of the data's date."""

    user_id: str
    as_of: date | None = None
    windows: dict[str, WindowReport]


class AccountKind(BaseModel):
    """What eligibility needs about an account: its kind and name, never a number or an id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str | None = None
    subtype: str | None = None
    name: str | None = None
    official_name: str | None = None
    holder_category: str | None = None


class PersonaDetails(BaseModel):
    """What the recommender needs beyond the persona: it travels by claim check (it grows with the
    user's data), as a JSON object in the data bucket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report: AnalysisReport
    accounts: list[AccountKind] = []


class GuardrailResults(BaseModel):
    """Which of the checks every text must pass (SPEC §6) the item's text passed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tone: bool
    grounding: bool
    disclosure: bool
    length: bool

    @property
    def passed(self) -> bool:
        return self.tone and self.grounding and self.disclosure and self.length

    @property
    def failed(self) -> list[str]:
        return [name for name, ok in self.model_dump().items() if not ok]


class CitableFact(BaseModel):
    """One figure a text may cite (the recommender's fact table, rounded as displayed): what the grounding
    check of an operator's edited text accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    unit: Literal["usd", "percent", "days", "months", "count", "date", "mask", "text"]
    value: float | str
    display: str
    untrusted: bool = False


class Alternative(BaseModel):
    """Another catalog item an operator may put in a recommendation's place: already eligible for the
    user, written for them and past the guardrails (the recommender decides; the operator picks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog_item_id: str
    catalog_version: str
    title: str
    body: str
    rationale: str
    disclosure: str


class ReviewItem(BaseModel):
    """What an operator needs to review one recommendation, so the operator never reads the
    recommender's tables (``recommendations.generated``: inline, or by claim check as ``ReviewItems``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: Literal["education", "offer"]
    title: str
    body: str
    rationale: str
    disclosure: str
    persona: str
    catalog_item_id: str
    catalog_version: str
    rank: int = 0
    guardrails: GuardrailResults
    generator: str = Field("template", description="Who wrote the text: template or llm")
    fell_back_to_template: bool = Field(
        description="The model's text was refused (or failed) and the template's was used instead"
    )
    facts: list[CitableFact] = Field(
        default_factory=list,
        description="The figures this item's text may cite (an edited text is checked against them)",
    )
    trusted_names: list[str] = Field(
        default_factory=list, description="Catalog strings whose digits are content, not claims"
    )
    alternatives: list[Alternative] = Field(
        default_factory=list,
        description="Other catalog items of the same kind this user is eligible for, written for them and "
        "past every guardrail check: what an operator may override this item with",
    )


class ReviewItems(BaseModel):
    """The claim-checked form of a user's review items: a line of a batch's JSON Lines object
    (``recommendations.batch_generated``), or the object of a large ``recommendations.generated`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[ReviewItem]
    user_id: str | None = Field(
        None,
        description="Whom the items were generated for (a line of a batch object: an erasure blanks the"
        " user's lines); absent from the per-user objects of recommendations.generated",
    )
