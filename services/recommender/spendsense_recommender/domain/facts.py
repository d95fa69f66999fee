"""The table of facts a rationale may cite: the user's own figures, rounded and formatted once.

Both writers work from the same table: the template writer substitutes ``{key}`` placeholders with a
fact's ``display``; the LLM receives the facts (never the report) and the grounding check accepts a
number only when it matches one of them, unit-aware. Facts are named by a fixed vocabulary
(``FACT_UNITS``) so that catalog templates can be validated when the catalog loads.

Units: ``usd`` (dollars; whole dollars from $100, cents below), ``percent`` (percent points, 68 for
0.68), ``days``, ``months``, ``count``, ``date`` (ISO value, "October 28, 2026" display), ``mask``
(last four digits) and ``text`` (names). Text from bank records (card and merchant names) is untrusted:
it goes through the shared sanitizer (``spendsense_shared.guardrails.untrusted``) before it becomes a
fact, so the template and the model see the same safe name — a known merchant's own name ("Netflix"),
the cleaned name, or a neutral label ("a merchant ending in KXTR"; a card: "card") when it looks like
an instruction, a phone number, a link, an e-mail address or a sentence, or fails the tone check. The
raw name stays in the decision trace only; a name that is not a known merchant is marked ``untrusted``
for the prompt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date

from spendsense_shared.guardrails.facts import Fact, FactTable, Unit
from spendsense_shared.guardrails.untrusted import (
    MAX_NAME_CHARS,
    card_display,
    clean_untrusted,
    merchant_display,
)

from .snapshot import Card, Merchant, UserSnapshot

__all__ = [
    "FACT_UNITS",
    "MAX_DATA_CHARS",
    "Fact",
    "FactTable",
    "build_facts",
    "format_date",
    "placeholders",
    "render_template",
    "sanitize_untrusted",
]

MAX_DATA_CHARS = MAX_NAME_CHARS
UTILIZATION_TARGET = 0.30
EMERGENCY_TARGET_MONTHS = 3

_MERCHANT_SLOTS = ("top1", "top2", "top3")
FACT_UNITS: dict[str, Unit] = {
    "as_of": "date",
    "window.days": "days",
    "card.name": "text",
    "card.mask": "mask",
    "card.utilization": "percent",
    "card.balance": "usd",
    "card.limit": "usd",
    "card.apr": "percent",
    "card.minimum_payment": "usd",
    "card.interest": "usd",
    "card.paydown_to_target": "usd",
    "credit.max_utilization": "percent",
    "credit.card_count": "count",
    "credit.interest_charges": "usd",
    "subs.count": "count",
    "subs.monthly_spend": "usd",
    "subs.annual_spend": "usd",
    "subs.share": "percent",
    **{f"subs.{slot}.name": "text" for slot in _MERCHANT_SLOTS},
    **{f"subs.{slot}.amount": "usd" for slot in _MERCHANT_SLOTS},
    **{f"subs.{slot}.last_date": "date" for slot in _MERCHANT_SLOTS},
    "subs.changed.name": "text",
    "subs.changed.from": "usd",
    "subs.changed.to": "usd",
    "subs.changed.date": "date",
    "savings.balance": "usd",
    "savings.monthly_inflow": "usd",
    "savings.growth": "percent",
    "savings.emergency_months": "months",
    "income.median_gap": "days",
    "income.buffer_months": "months",
    "income.checking_balance": "usd",
    "income.total": "usd",
    "income.monthly_average": "usd",
    "cash.income": "usd",
    "cash.spending": "usd",
    "cash.monthly_spending": "usd",
    "cash.shortfall": "usd",
    "cash.shortfall_pct": "percent",
    "cash.overdraft_fees": "count",
    "guide.utilization_target": "percent",
    "guide.emergency_target_months": "months",
    "guide.emergency_target_amount": "usd",
    "offer.apr": "percent",
    "offer.intro_apr": "percent",
    "offer.intro_months": "months",
    "offer.apy": "percent",
    "offer.annual_fee": "usd",
    "offer.monthly_fee": "usd",
}
OFFER_TERM_FACTS = {"apr", "intro_apr", "intro_months", "apy", "annual_fee", "monthly_fee"}

_PLACEHOLDER = re.compile(r"\{([a-z0-9_.]+)\}")


# -- formatting ---------------------------------------------------------------------------------------


def _usd(key: str, amount: float | None, *, positive: bool = False) -> Fact | None:
    if amount is None or not math.isfinite(amount) or (positive and amount <= 0):
        return None
    value = abs(amount)
    rounded: float = float(round(value)) if value >= 100 else round(value, 2)
    whole = value >= 100 or rounded == 0
    display = f"${rounded:,.0f}" if whole else f"${rounded:,.2f}"
    return Fact(key, "usd", rounded, display, raw=amount)


def _percent(
    key: str, ratio: float | None, *, positive: bool = False, decimals: int | None = None
) -> Fact | None:
    """Signal ratios: whole percents, one decimal below 10 %. Rates (APR, APY) keep ``decimals``."""
    if ratio is None or not math.isfinite(ratio) or (positive and ratio <= 0):
        return None
    points = ratio * 100
    if decimals is not None:
        rounded = round(points, decimals)
    elif abs(points) < 10 and round(points, 1) != round(points):
        rounded = round(points, 1)
    else:
        rounded = float(round(points))
    text = (
        f"{rounded:.{decimals or 1}f}".rstrip("0").rstrip(".")
        if rounded != int(rounded)
        else f"{int(rounded)}"
    )
    return Fact(key, "percent", rounded, f"{text} %", raw=ratio)


def _rate(key: str, points: float | None) -> Fact | None:
    """An interest rate given in percent points (21.99), shown as published: "21.99 %"."""
    return None if points is None else _percent(key, points / 100, decimals=2)


def _months(key: str, months: float | None, *, positive: bool = False) -> Fact | None:
    if months is None or not math.isfinite(months) or months < 0 or (positive and round(months, 1) <= 0):
        return None
    rounded = round(months, 1)
    text = f"{int(rounded)}" if rounded == int(rounded) else f"{rounded:.1f}"
    return Fact(key, "months", rounded, f"{text} month" + ("" if rounded == 1 else "s"), raw=months)


def _days(key: str, days: float | None) -> Fact | None:
    if days is None or not math.isfinite(days) or days <= 0:
        return None
    rounded = float(round(days))
    return Fact(key, "days", rounded, f"{int(rounded)} day" + ("" if rounded == 1 else "s"), raw=days)


def _count(key: str, count: int | None, *, positive: bool = False) -> Fact | None:
    if count is None or (positive and count <= 0):
        return None
    return Fact(key, "count", float(count), str(count), raw=count)


def format_date(value: date) -> str:
    return f"{value:%B} {value.day}, {value.year}"


def _date(key: str, value: date | None) -> Fact | None:
    return None if value is None else Fact(key, "date", value.isoformat(), format_date(value))


def sanitize_untrusted(text: str, cap: int = MAX_DATA_CHARS) -> str:
    """Printable, single-line, length-capped text (the shared cleaner; kept here for its callers)."""
    return clean_untrusted(text, cap)


def _name(key: str, raw: str | None, kind: str) -> Fact | None:
    safe = merchant_display(raw) if kind == "merchant" else card_display(raw)
    if safe is None:
        return None
    return Fact(key, "text", safe.text, safe.text, raw=raw, untrusted=safe.source != "known")


def _mask(key: str, raw: str | None) -> Fact | None:
    digits = "".join(ch for ch in raw or "" if ch.isdigit())[-4:]
    return Fact(key, "mask", digits, digits, raw=raw) if len(digits) >= 2 else None


# -- the table ---------------------------------------------------------------------------------------


def focus_card(cards: list[Card]) -> Card | None:
    """The card a rationale talks about: highest utilization among cards with a limit, else the
    highest balance; ties broken by mask and name so the choice is stable."""
    with_util = [c for c in cards if c.utilization is not None]
    if with_util:
        return max(
            with_util, key=lambda c: (c.utilization or 0.0, c.balance or 0.0, c.mask or "", c.name or "")
        )
    with_balance = [c for c in cards if c.balance is not None]
    if with_balance:
        return max(with_balance, key=lambda c: (c.balance or 0.0, c.mask or "", c.name or ""))
    return None


def _card_facts(card: Card | None) -> list[Fact | None]:
    if card is None:
        return []
    paydown = None
    if card.balance is not None and card.limit:
        paydown = card.balance - UTILIZATION_TARGET * card.limit
    return [
        _name("card.name", card.name, "card"),
        _mask("card.mask", card.mask),
        _percent("card.utilization", card.utilization),
        _usd("card.balance", card.balance, positive=True),
        _usd("card.limit", card.limit, positive=True),
        _rate("card.apr", card.apr),
        _usd("card.minimum_payment", card.minimum_payment, positive=True),
        _usd("card.interest", card.interest_charges, positive=True),
        _usd("card.paydown_to_target", paydown, positive=True),
    ]


def ranked_merchants(merchants: list[Merchant]) -> list[Merchant]:
    return sorted(merchants, key=lambda m: (-(m.monthly_amount or m.typical_amount or 0.0), m.merchant))


def _merchant_facts(merchants: list[Merchant]) -> list[Fact | None]:
    facts: list[Fact | None] = []
    ranked = ranked_merchants(merchants)
    for slot, merchant in zip(_MERCHANT_SLOTS, ranked, strict=False):
        facts += [
            _name(f"subs.{slot}.name", merchant.merchant, "merchant"),
            _usd(f"subs.{slot}.amount", merchant.monthly_amount or merchant.typical_amount, positive=True),
            _date(f"subs.{slot}.last_date", merchant.last_date),
        ]
    changed = [m for m in ranked if m.price_change is not None and m.price_change.to_amount is not None]
    if changed and changed[0].price_change is not None:
        change = changed[0].price_change
        facts += [
            _name("subs.changed.name", changed[0].merchant, "merchant"),
            _usd("subs.changed.from", change.from_amount, positive=True),
            _usd("subs.changed.to", change.to_amount, positive=True),
            _date("subs.changed.date", change.changed_on),
        ]
    return facts


def _cash_facts(snapshot: UserSnapshot) -> list[Fact | None]:
    cash = snapshot.signals.cash_flow
    shortfall = None
    shortfall_ratio = None
    if cash.spending is not None and cash.income is not None and cash.spending > cash.income:
        shortfall = cash.spending - cash.income
        shortfall_ratio = shortfall / cash.income if cash.income > 0 else None
    return [
        _usd("cash.income", cash.income, positive=True),
        _usd("cash.spending", cash.spending, positive=True),
        _usd("cash.monthly_spending", cash.monthly_spending, positive=True),
        _usd("cash.shortfall", shortfall, positive=True),
        _percent("cash.shortfall_pct", shortfall_ratio, positive=True),
        _count("cash.overdraft_fees", cash.overdraft_fee_count, positive=True),
        _usd(
            "guide.emergency_target_amount",
            None if cash.monthly_spending is None else EMERGENCY_TARGET_MONTHS * cash.monthly_spending,
            positive=True,
        ),
    ]


def _income_facts(snapshot: UserSnapshot) -> list[Fact | None]:
    income = snapshot.signals.income
    months = snapshot.window_days / 30.4375 if snapshot.window_days else None
    monthly = income.income_total / months if income.income_total and months else None
    return [
        _days("income.median_gap", income.median_pay_gap_days),
        _months("income.buffer_months", income.cash_flow_buffer_months, positive=True),
        _usd("income.checking_balance", income.checking_balance, positive=True),
        _usd("income.total", income.income_total, positive=True),
        _usd("income.monthly_average", monthly, positive=True),
    ]


def _savings_facts(snapshot: UserSnapshot) -> list[Fact | None]:
    savings = snapshot.signals.savings
    return [
        _usd("savings.balance", savings.balance, positive=True),
        _usd("savings.monthly_inflow", savings.net_inflow_monthly, positive=True),
        _percent("savings.growth", savings.growth_rate, positive=True),
        _months("savings.emergency_months", savings.emergency_fund_months, positive=True),
    ]


def _subscription_facts(snapshot: UserSnapshot) -> list[Fact | None]:
    subs = snapshot.signals.subscriptions
    monthly = subs.monthly_recurring_spend
    return [
        _count("subs.count", subs.recurring_merchant_count, positive=True),
        _usd("subs.monthly_spend", monthly, positive=True),
        _usd("subs.annual_spend", None if monthly is None else 12 * monthly, positive=True),
        _percent("subs.share", subs.subscription_share, positive=True),
        *_merchant_facts(subs.recurring_merchants),
    ]


def build_facts(snapshot: UserSnapshot) -> FactTable:
    """Every fact available for this user (a fact whose figure is unknown or not meaningful, such as
    zero overdraft fees, is absent, so templates that need it are not used)."""
    credit = snapshot.signals.credit
    candidates: list[Fact | None] = [
        _date("as_of", snapshot.as_of),
        _days("window.days", snapshot.window_days),
        *_card_facts(focus_card(credit.cards)),
        _percent("credit.max_utilization", credit.max_utilization),
        _count("credit.card_count", credit.card_count, positive=True),
        _usd("credit.interest_charges", credit.interest_charges, positive=True),
        *_subscription_facts(snapshot),
        *_savings_facts(snapshot),
        *_income_facts(snapshot),
        *_cash_facts(snapshot),
        _percent("guide.utilization_target", UTILIZATION_TARGET),
        _months("guide.emergency_target_months", EMERGENCY_TARGET_MONTHS),
    ]
    return FactTable(f for f in candidates if f is not None)


def offer_facts(terms: Mapping[str, float | None]) -> list[Fact]:
    """Facts for an offer's published terms (catalog data, so trusted)."""
    builders = {
        "apr": lambda v: _rate("offer.apr", v),
        "intro_apr": lambda v: _rate("offer.intro_apr", v),
        "apy": lambda v: _rate("offer.apy", v),
        "intro_months": lambda v: _months("offer.intro_months", v),
        "annual_fee": lambda v: _usd("offer.annual_fee", v),
        "monthly_fee": lambda v: _usd("offer.monthly_fee", v),
    }
    facts = [builders[name](value) for name, value in terms.items() if name in builders and value is not None]
    return [f for f in facts if f is not None]


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def render_template(template: str, facts: FactTable) -> str | None:
    """The template with every ``{key}`` replaced by its fact's display, or None when a fact is missing."""
    if any(key not in facts for key in placeholders(template)):
        return None
    return _PLACEHOLDER.sub(lambda m: facts[m.group(1)].display, template)
