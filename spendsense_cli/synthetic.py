"""Synthetic Plaid-style users with a known persona, for demos, load tests and evaluation (SPEC §8).

Each user is built backwards from its intended persona: the SPEC §4 signals over the 180-day window
that ends at ``as_of`` are steered well clear of the SPEC §5 thresholds, so the first matching rule in
priority order is the intended one. Every user has a posted transaction on ``as_of`` itself, so the
signal code's default as-of date (the latest posted transaction) is the same day.

Output: JSON Lines in the upload format (one user per line, Plaid field names, Plaid's sign
convention: positive = money leaving the account) and a sidecar ``<out>.labels.jsonl`` with the
ground truth (persona and demographics), line-aligned with the users. Users are generated and written
one at a time from a per-user random stream, so memory stays flat and user *i* is the same for a seed
whatever the number of users.

Persona recipes (window figures; the margins keep labels robust to reasonable signal-code choices,
and paydays and rent stay off the window's first day so an inclusive or exclusive window start
cannot move a whole paycheck):

* high_utilization: one card at 60-88 % utilization carrying a balance from before the data
  (interest transactions every cycle, APR ``interest_charge_amount`` > 0); half pay exactly the
  minimum on a card they no longer use (so payments stay within 10 % of the minimum), half pay
  1.6-3x the minimum; 15 % also miss a payment (``is_overdue``, late fee). Some also carry
  lower-priority traits (irregular pay, many subscriptions, an overdraft, savings).
* variable_income_budgeter: contract/gig deposits 50-70 days apart (>= 3 in the window), checking
  balance 0.15-0.5 months of spending; cards paid in full, < 22 % utilization.
* cash_flow_balancer: regular pay (gaps <= 31 days); spending 1.18-1.4x income (with 0-2 overdraft
  fees), or 0.86-0.93x income with 2-4 overdraft/NSF fees; cards paid in full, < 22 %.
* subscription_heavy: 4-8 monthly subscriptions worth >= $55/month even without the priciest,
  charged on a fixed day of the month (0 or +1 day: gaps 29-32), optional telecom bills and a weekly
  meal kit; spending 0.72-0.9x income, no fees, cards paid in full.
* savings_builder: >= $350/month into savings, spending 0.6-0.8x income, <= 2 cheap subscriptions
  (< $31/month; at most one if there is an electricity bill), every card < 22 % with a known limit.
* general_wellness: like savings_builder without the saving: no savings, a static or net-negative
  savings account, or a >= $45k balance topped up by <= $75/month (< 1 % growth).

Messy parts for everyone: merchant-name variants under one ``merchant_entity_id``, small merchants
without a merchant name, date jitter and weekend shifts, pending transactions on the last two days,
refunds on cards, several cards (some without a reported limit, some unused), business accounts
(excluded from analysis, with their own revenue and SaaS subscriptions), groceries every 2-12 days
at 2-3 stores with widely varying baskets, seasonal electricity bills, rent, card payments (checking
outflow + card inflow), savings transfers, and payroll as INCOME_WAGES (v1) or INCOME_SALARY /
INCOME_GIG_ECONOMY (v2, December 2025) for a quarter of the users.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import random
import string
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

Json = dict[str, Any]

PERSONAS: tuple[str, ...] = (
    "high_utilization",
    "variable_income_budgeter",
    "cash_flow_balancer",
    "subscription_heavy",
    "savings_builder",
    "general_wellness",
)
HU, VIB, CFB, SH, SB, GW = PERSONAS
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
REGIONS: tuple[str, ...] = ("northeast", "midwest", "south", "west")
INCOME_BANDS: tuple[str, ...] = ("low", "middle", "high")
WINDOW_DAYS = 180
DEFAULT_AS_OF = date(2026, 10, 31)


@dataclass(frozen=True)
class GenerationSummary:
    users: int
    transactions: int
    persona_counts: dict[str, int]
    path: Path
    labels_path: Path


# --------------------------------------------------------------------------------------------------
# Catalog


@dataclass(frozen=True)
class _Merchant:
    name: str | None  # Plaid merchant_name; None for small merchants Plaid cannot resolve
    variants: tuple[str, ...]  # raw transaction names; "{n}" becomes random digits
    detailed: str
    channel: str = "in store"
    price: float = 0.0  # subscriptions: the monthly price


@dataclass(frozen=True)
class _Issuer:
    name: str
    official: str
    payment_name: str  # how the payment reads on the checking account


@dataclass(frozen=True)
class _Category:
    per_month: float  # visits a month for a $4,000/month earner (fewer below, more above)
    mean: float  # typical ticket before calibration (the calibration scales all tickets)
    sigma: float  # lognormal spread: wide enough that amounts never look like a subscription
    merchants: tuple[_Merchant, ...]
    picks: tuple[int, int]  # how many of these merchants one user frequents
    elastic: bool  # tickets grow with the budget (a dinner out, yes; a coffee, barely)


def _m(
    name: str | None, variants: str, detailed: str, channel: str = "in store", price: float = 0.0
) -> _Merchant:
    return _Merchant(name, tuple(variants.split("|")), detailed, channel, price)


_TV, _MUSIC, _SERVICES = (
    "ENTERTAINMENT_TV_AND_MOVIES",
    "ENTERTAINMENT_MUSIC_AND_AUDIO",
    "GENERAL_SERVICES_OTHER_GENERAL_SERVICES",
)
_SUBSCRIPTIONS: tuple[_Merchant, ...] = (
    _m("Netflix", "NETFLIX.COM|Netflix|NETFLIX *{n}", _TV, "online", 15.49),
    _m("Spotify", "SPOTIFY USA|Spotify|SPOTIFY *P{n}", _MUSIC, "online", 11.99),
    _m("Hulu", "HULU 877-8244858 CA|Hulu|HLU*HULU {n}", _TV, "online", 17.99),
    _m("Disney+", "DISNEY PLUS|Disney+|DISNEYPLUS *{n}", _TV, "online", 13.99),
    _m("Max", "MAX.COM|HBO Max|MAX *{n}", _TV, "online", 16.99),
    _m("YouTube Premium", "GOOGLE *YOUTUBEPREMIUM|YouTube Premium|GOOGLE *YouTube {n}", _TV, "online", 13.99),
    _m("Apple", "APPLE.COM/BILL|Apple iCloud|APPLE.COM/BILL *{n}", _SERVICES, "online", 9.99),
    _m("Adobe", "ADOBE *CREATIVE CLOUD|Adobe|ADOBE *{n}", _SERVICES, "online", 22.99),
    _m("Microsoft", "MICROSOFT*365|Microsoft 365|MSFT *{n}", _SERVICES, "online", 9.99),
    _m("Dropbox", "DROPBOX*{n}|Dropbox|DBX DROPBOX PLUS", _SERVICES, "online", 11.99),
    _m(
        "Planet Fitness",
        "PLANET FITNESS|Planet Fitness|PLANET FIT CLUB #{n}",
        "PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS",
        "other",
        24.99,
    ),
    _m(
        "Peloton",
        "PELOTON* MEMBERSHIP|Peloton|PELOTON *{n}",
        "PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS",
        "online",
        44.00,
    ),
    _m("The New York Times", "NYTIMES*NYTDIGITAL|New York Times|NYT *{n}", _SERVICES, "online", 17.00),
    _m("Audible", "AUDIBLE*{n}|Audible|AUDIBLE US", _MUSIC, "online", 14.95),
    _m("OpenAI", "OPENAI *CHATGPT SUBSCR|ChatGPT Plus|OPENAI *{n}", _SERVICES, "online", 20.00),
    _m(
        "Xbox",
        "MICROSOFT*XBOX GAME PASS|Xbox Game Pass|XBOX *{n}",
        "ENTERTAINMENT_VIDEO_GAMES",
        "online",
        16.99,
    ),
    _m("Paramount+", "PARAMOUNT+|Paramount Plus|PARAMOUNT+ *{n}", _TV, "online", 12.99),
    _m("Duolingo", "DUOLINGO *{n}|Duolingo|DUOLINGO PLUS", _SERVICES, "online", 12.99),
)
_CHEAP_SUBSCRIPTIONS = tuple(m for m in _SUBSCRIPTIONS if m.price <= 15.49)
_TELECOM: tuple[_Merchant, ...] = (
    _m(
        "Verizon",
        "VERIZON WIRELESS PAYMENTS|Verizon|VZWRLSS*APOCC VISB",
        "RENT_AND_UTILITIES_TELEPHONE",
        "online",
    ),
    _m(
        "Xfinity",
        "COMCAST XFINITY|Xfinity|COMCAST CABLE COMM {n}",
        "RENT_AND_UTILITIES_INTERNET_AND_CABLE",
        "online",
    ),
)
_MEAL_KIT = _m(
    "HelloFresh", "HELLOFRESH {n}|HelloFresh|HELLOFRESH.COM", "FOOD_AND_DRINK_OTHER_FOOD_AND_DRINK", "online"
)
_BUSINESS_SAAS: tuple[_Merchant, ...] = (
    _m("Google Workspace", "GOOGLE *GSUITE_{n}|Google Workspace", _SERVICES, "online", 14.40),
    _m("QuickBooks", "INTUIT *QBOOKS ONLINE|QuickBooks", _SERVICES, "online", 35.00),
    _m("Slack", "SLACK T{n}|Slack", _SERVICES, "online", 8.75),
    _m("Zoom", "ZOOM.US 888-799-9666|Zoom", _SERVICES, "online", 15.99),
)
_CLIENT = _Merchant(
    None, ("STRIPE TRANSFER ST-{n}", "CLIENT ACH PAYMENT {n}"), "INCOME_OTHER_INCOME", "other"
)
_BUSINESS_EXPENSES: tuple[_Merchant, ...] = (
    _m("Amazon Web Services", "AWS EMEA|AMAZON WEB SERVICES", _SERVICES, "online"),
    _m("Office Depot", "OFFICE DEPOT #{n}|Office Depot", "GENERAL_MERCHANDISE_OFFICE_SUPPLIES"),
    _m("UPS", "UPS*{n}|UPS", "GENERAL_SERVICES_POSTAGE_AND_SHIPPING"),
    _m("FedEx", "FEDEX {n}|FedEx", "GENERAL_SERVICES_POSTAGE_AND_SHIPPING"),
    _m("Meta", "FACEBK *{n}|Facebook Ads", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES", "online"),
)
_E = "RENT_AND_UTILITIES_GAS_AND_ELECTRICITY"
_UTILITIES: dict[str, _Merchant] = {
    "northeast": _m("Con Edison", "CON ED OF NY|CONED ONLINE PMT|Con Edison", _E, "online"),
    "midwest": _m("ComEd", "COMED PAYMENT|ComEd|COMMONWEALTH EDISON", _E, "online"),
    "south": _m("Duke Energy", "DUKE ENERGY PAYMENT|Duke Energy|DUKE-ENERGY {n}", _E, "online"),
    "west": _m("PG&E", "PGANDE WEB ONLINE|PG&E|PACIFIC GAS & ELECTRIC", _E, "online"),
}
# Electricity follows the seasons (heating, then air conditioning), so bills vary well beyond 20 %.
_SEASON = (1.4, 1.35, 1.0, 0.8, 0.75, 1.05, 1.45, 1.5, 1.1, 0.8, 0.95, 1.3)  # January .. December
_LANDLORDS: tuple[_Merchant, ...] = (
    _m("Avalon Communities", "AVALON COMMUNITIES RENT|AVALONBAY PPD", "RENT_AND_UTILITIES_RENT", "other"),
    _m("Greystar", "GREYSTAR RE RENT {n}|GREYSTAR PPD", "RENT_AND_UTILITIES_RENT", "other"),
    _m(None, "RENT PAYMENT {n} PPD|PROPERTY MGMT RENT WEB PMT", "RENT_AND_UTILITIES_RENT", "other"),
    _m("Equity Residential", "EQUITY RESIDENTIAL RENT|EQR WEB PMT {n}", "RENT_AND_UTILITIES_RENT", "other"),
)
_G = "FOOD_AND_DRINK_GROCERIES"
_GROCERS: dict[str, tuple[_Merchant, ...]] = {
    "northeast": (
        _m("Stop & Shop", "STOP & SHOP {n}|Stop & Shop", _G),
        _m("Wegmans", "WEGMANS #{n}|Wegmans", _G),
        _m("Trader Joe's", "TRADER JOE'S #{n}|Trader Joe's", _G),
        _m("ShopRite", "SHOPRITE {n}|ShopRite", _G),
    ),
    "midwest": (
        _m("Kroger", "KROGER #{n}|Kroger", _G),
        _m("Meijer", "MEIJER # {n}|Meijer", _G),
        _m("Aldi", "ALDI {n}|Aldi", _G),
        _m("Hy-Vee", "HY-VEE {n}|Hy-Vee", _G),
    ),
    "south": (
        _m("Publix", "PUBLIX #{n}|Publix", _G),
        _m("H-E-B", "H-E-B #{n}|H-E-B", _G),
        _m("Kroger", "KROGER #{n}|Kroger", _G),
        _m("Aldi", "ALDI {n}|Aldi", _G),
    ),
    "west": (
        _m("Safeway", "SAFEWAY #{n}|Safeway|SAFEWAY STORE {n}", _G),
        _m("Trader Joe's", "TRADER JOE'S #{n}|Trader Joe's", _G),
        _m("Whole Foods Market", "WHOLEFDS {n}|Whole Foods Market", _G),
        _m("Fred Meyer", "FRED MEYER #{n}|Fred Meyer", _G),
    ),
}
_FAST, _REST = "FOOD_AND_DRINK_FAST_FOOD", "FOOD_AND_DRINK_RESTAURANT"
_CATEGORIES: dict[str, _Category] = {
    "dining": _Category(
        10.0,
        30.0,
        0.6,
        (
            _m("Chipotle", "CHIPOTLE {n}|Chipotle Mexican Grill", _FAST),
            _m("McDonald's", "MCDONALD'S F{n}|McDonald's", _FAST),
            _m("Sweetgreen", "SWEETGREEN {n}|Sweetgreen", _REST),
            _m("Panera Bread", "PANERA BREAD #{n}|Panera Bread", _REST),
            _m("DoorDash", "DOORDASH*{n}|DoorDash", _REST, "online"),
            _m("Uber Eats", "UBER *EATS {n}|Uber Eats", _REST, "online"),
            _m("Olive Garden", "OLIVE GARDEN {n}|Olive Garden", _REST),
            _m(None, "TST* THE LOCAL TAVERN|TST* CORNER BISTRO", _REST),
            _m(None, "SQ *TACO TRUCK {n}|SQ *NOODLE BAR", _FAST),
            _m("Shake Shack", "SHAKE SHACK {n}|Shake Shack", _FAST),
        ),
        (3, 7),
        True,
    ),
    "coffee": _Category(
        6.0,
        7.0,
        0.45,
        (
            _m("Starbucks", "STARBUCKS STORE {n}|Starbucks|STARBUCKS #{n}", "FOOD_AND_DRINK_COFFEE"),
            _m("Dunkin'", "DUNKIN #{n}|Dunkin'", "FOOD_AND_DRINK_COFFEE"),
            _m(None, "SQ *BLUE BOTTLE COFFEE|SQ *DAILY GRIND CAFE", "FOOD_AND_DRINK_COFFEE"),
        ),
        (1, 2),
        False,
    ),
    "shopping": _Category(
        7.0,
        60.0,
        0.85,
        (
            _m(
                "Amazon",
                "AMAZON.COM*{n}|AMZN Mktp US*{n}|Amazon",
                "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES",
                "online",
            ),
            _m("Target", "TARGET T-{n}|Target", "GENERAL_MERCHANDISE_SUPERSTORES"),
            _m(
                "Walmart",
                "WALMART SUPERCENTER #{n}|Walmart|WM SUPERCENTER #{n}",
                "GENERAL_MERCHANDISE_SUPERSTORES",
            ),
            _m("Best Buy", "BEST BUY {n}|Best Buy", "GENERAL_MERCHANDISE_ELECTRONICS"),
            _m("TJ Maxx", "TJ MAXX #{n}|TJ Maxx", "GENERAL_MERCHANDISE_CLOTHING_AND_ACCESSORIES"),
            _m("The Home Depot", "THE HOME DEPOT #{n}|Home Depot", "HOME_IMPROVEMENT_HARDWARE"),
            _m("Etsy", "ETSY.COM - {n}|Etsy", "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES", "online"),
        ),
        (3, 5),
        True,
    ),
    "gas": _Category(
        4.0,
        42.0,
        0.4,
        (
            _m("Shell", "SHELL OIL {n}|Shell", "TRANSPORTATION_GAS"),
            _m("Chevron", "CHEVRON {n}|Chevron", "TRANSPORTATION_GAS"),
            _m("ExxonMobil", "EXXONMOBIL {n}|Exxon", "TRANSPORTATION_GAS"),
            _m("BP", "BP#{n}|BP", "TRANSPORTATION_GAS"),
        ),
        (1, 3),
        False,
    ),
    "rides": _Category(
        2.5,
        22.0,
        0.6,
        (
            _m("Uber", "UBER *TRIP {n}|Uber", "TRANSPORTATION_TAXIS_AND_RIDE_SHARES", "online"),
            _m("Lyft", "LYFT *RIDE {n}|Lyft", "TRANSPORTATION_TAXIS_AND_RIDE_SHARES", "online"),
        ),
        (1, 2),
        False,
    ),
    "pharmacy": _Category(
        1.5,
        25.0,
        0.8,
        (
            _m("CVS", "CVS/PHARMACY #{n}|CVS Pharmacy", "MEDICAL_PHARMACIES_AND_SUPPLEMENTS"),
            _m("Walgreens", "WALGREENS #{n}|Walgreens", "MEDICAL_PHARMACIES_AND_SUPPLEMENTS"),
        ),
        (1, 1),
        False,
    ),
    "entertainment": _Category(
        1.2,
        40.0,
        0.8,
        (
            _m("AMC Theatres", "AMC {n}|AMC Theatres", "ENTERTAINMENT_TV_AND_MOVIES"),
            _m(
                "Ticketmaster",
                "TICKETMASTER {n}|Ticketmaster",
                "ENTERTAINMENT_SPORTING_EVENTS_AMUSEMENT_PARKS_AND_MUSEUMS",
                "online",
            ),
            _m("Steam", "STEAMGAMES.COM {n}|Steam", "ENTERTAINMENT_VIDEO_GAMES", "online"),
        ),
        (1, 2),
        True,
    ),
    "travel": _Category(
        0.25,
        320.0,
        0.8,
        (
            _m("Delta Air Lines", "DELTA AIR {n}|Delta", "TRAVEL_FLIGHTS", "online"),
            _m("Airbnb", "AIRBNB * HM{n}|Airbnb", "TRAVEL_LODGING", "online"),
            _m("Marriott", "MARRIOTT {n}|Marriott", "TRAVEL_LODGING"),
        ),
        (1, 2),
        True,
    ),
}
_GROCERY_MEAN, _GROCERY_SIGMA = 85.0, 0.5
_ISSUERS: tuple[_Issuer, ...] = (
    _Issuer("Sapphire Preferred", "Chase Sapphire Preferred Visa", "CHASE CREDIT CRD AUTOPAY"),
    _Issuer("Double Cash", "Citi Double Cash Card", "CITI AUTOPAY PAYMENT"),
    _Issuer("Quicksilver", "Capital One Quicksilver Mastercard", "CAPITAL ONE MOBILE PMT"),
    _Issuer("Discover it", "Discover it Cash Back", "DISCOVER E-PAYMENT"),
    _Issuer("Blue Cash Everyday", "American Express Blue Cash Everyday", "AMEX EPAYMENT ACH PMT"),
    _Issuer("Active Cash", "Wells Fargo Active Cash Visa Signature", "WF CREDIT CARD AUTO PAY"),
    _Issuer("Customized Cash", "Bank of America Customized Cash Rewards Visa", "BA ELECTRONIC PAYMENT"),
)
_BUSINESS_CARD = _Issuer("Ink Business Cash", "Chase Ink Business Cash Visa", "CHASE CREDIT CRD AUTOPAY")
_CARD_SIDE_PAYMENT = (
    "AUTOMATIC PAYMENT - THANK YOU",
    "Payment Thank You-Mobile",
    "ONLINE PAYMENT, THANK YOU",
)
_CHECKING = (
    ("Everyday Checking", "Wells Fargo Everyday Checking"),
    ("TOTAL CHECKING", "Chase Total Checking"),
    ("360 Checking", "Capital One 360 Checking"),
    ("Advantage Banking", None),
)
_SAVINGS = (
    ("360 Performance Savings", "Capital One 360 Performance Savings", "savings"),
    ("High Yield Savings", "Marcus High Yield Online Savings", "savings"),
    ("Money Market", "Ally Money Market Account", "money market"),
    ("Cash Account", "Wealthfront Cash Account", "cash management"),
)
_EMPLOYERS = (
    "ACME CORP",
    "GLOBEX INC",
    "INITECH LLC",
    "UMBRELLA HEALTH",
    "STARK INDUSTRIES",
    "WAYNE ENTERPRISES",
    "CITY OF SPRINGFIELD",
    "STATE UNIVERSITY",
    "NORTHWIND TRADERS",
    "CONTOSO LTD",
)
_CLIENTS = ("UPWORK ESCROW INC", "TOPTAL LLC", "FIVERR INTL", "BRIGHTLINE MEDIA LLC", "HARBOR CONSULTING")
_PRIMARIES = (
    "INCOME",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "LOAN_PAYMENTS",
    "BANK_FEES",
    "ENTERTAINMENT",
    "FOOD_AND_DRINK",
    "GENERAL_MERCHANDISE",
    "HOME_IMPROVEMENT",
    "MEDICAL",
    "PERSONAL_CARE",
    "GENERAL_SERVICES",
    "GOVERNMENT_AND_NON_PROFIT",
    "TRANSPORTATION",
    "TRAVEL",
    "RENT_AND_UTILITIES",
)
_NOT_SPENDING = frozenset({"INCOME", "TRANSFER_IN", "TRANSFER_OUT", "LOAN_PAYMENTS"})
_PAYROLL = frozenset({"INCOME_WAGES", "INCOME_SALARY", "INCOME_GIG_ECONOMY"})
_ANNUAL_INCOME = {"low": (28_000.0, 45_000.0), "middle": (50_000.0, 95_000.0), "high": (100_000.0, 220_000.0)}
_PERIODS = {"weekly": 52, "biweekly": 26, "semimonthly": 24, "monthly": 12}
_ALPHABET = string.ascii_letters + string.digits


@cache
def _primary(detailed: str) -> str:
    return next(p for p in _PRIMARIES if detailed.startswith(p + "_"))


@cache
def _entity_id(name: str) -> str:
    """A stable Plaid-looking entity id per merchant (the same for every user, as in Plaid)."""
    n = int.from_bytes(hashlib.sha256(name.encode()).digest(), "big")
    chars = []
    for _ in range(37):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return "".join(chars)


# --------------------------------------------------------------------------------------------------
# Dates


def _day(year: int, month: int, dom: int) -> date:
    return date(year, month, min(dom, calendar.monthrange(year, month)[1]))


def _months(first: date, last: date) -> Iterator[tuple[int, int]]:
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _monthly(first: date, last: date, dom: int) -> list[date]:
    """The ``dom``-th of every month from the month before ``first`` to ``last`` (callers filter)."""
    return [_day(y, m, dom) for y, m in _months(first - timedelta(days=31), last)]


def _prev_business_day(d: date) -> date:
    return d - timedelta(days=max(0, d.weekday() - 4))


def _next_business_day(d: date) -> date:
    return d + timedelta(days=(7 - d.weekday()) % 7 if d.weekday() >= 5 else 0)


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    return mean * rng.lognormvariate(-sigma * sigma / 2, sigma)


# --------------------------------------------------------------------------------------------------
# The plan: persona knobs, drawn first so the builders below stay persona-agnostic


@dataclass
class _Plan:
    persona: str
    age_band: str
    region: str
    income_band: str
    pay: str = "biweekly"  # weekly | biweekly | semimonthly | monthly | irregular
    v2_income: bool = False
    spend_ratio: float = 0.85  # window spending / window payroll income
    buffer_months: float = 1.5  # checking balance / average monthly spending
    subscriptions: list[_Merchant] = field(default_factory=list)
    price_change: bool = False
    telecom: list[_Merchant] = field(default_factory=list)
    meal_kit: bool = False
    electric: bool = True
    has_car: bool = True
    savings: str = "none"  # none | static | builder | churn | wealthy | drawdown
    cards: int = 1
    dormant_card: bool = False
    missing_limit: bool = False
    revolving_policy: str = ""  # high_utilization's card: "minimum" | "partial"
    revolving_util: float = 0.0
    overdue: bool = False
    overdrafts: int = 0
    business: bool = False


def _plan(persona: str, rng: random.Random, demographics: tuple[str, str, str]) -> _Plan:
    plan = _Plan(persona, *demographics)
    plan.pay = _regular_pay(rng, plan.income_band)
    plan.v2_income = rng.random() < 0.25
    plan.spend_ratio = rng.uniform(0.75, 0.9)
    plan.buffer_months = rng.uniform(0.6, 2.5)
    plan.electric = rng.random() < 0.65
    plan.subscriptions = _light_subscriptions(rng, plan.electric)
    plan.has_car = rng.random() < 0.8
    plan.savings = rng.choice(("none", "static"))
    plan.cards = rng.choices((0, 1, 2, 3), (0.05, 0.45, 0.35, 0.15))[0]
    plan.dormant_card = rng.random() < 0.1
    plan.missing_limit = plan.cards >= 2 and rng.random() < 0.35
    plan.business = rng.random() < 0.07
    _TWEAKS[persona](plan, rng)
    return plan


def _maximize(plan: _Plan) -> None:
    """The most accounts and streams one user can have: every card issuer (one of them dormant), a
    savings account, a business account, every subscription and telecom bill, a price change."""
    plan.cards, plan.dormant_card, plan.missing_limit = len(_ISSUERS) - 1, True, True
    plan.subscriptions, plan.telecom = list(_SUBSCRIPTIONS), list(_TELECOM)
    plan.price_change, plan.meal_kit, plan.electric, plan.business = True, True, True, True
    plan.savings = "builder" if plan.savings == "none" else plan.savings
    plan.overdrafts = max(plan.overdrafts, 4)


def _regular_pay(rng: random.Random, band: str) -> str:
    weights = (0.35, 0.35, 0.2, 0.1) if band == "low" else (0.08, 0.5, 0.28, 0.14)
    return rng.choices(("weekly", "biweekly", "semimonthly", "monthly"), weights)[0]


def _light_subscriptions(rng: random.Random, electric: bool) -> list[_Merchant]:
    """0-2 cheap subscriptions (under $31/month), so never subscription-heavy. With an electricity
    bill at most one: a lenient detector may take the (seasonal) bill for a third stream."""
    return rng.sample(_CHEAP_SUBSCRIPTIONS, rng.choice((0, 1, 1) if electric else (0, 1, 2, 2)))


def _heavy_subscriptions(rng: random.Random) -> list[_Merchant]:
    """4-8 subscriptions worth >= $55/month even if the signal code drops the priciest one."""
    pool = rng.sample(_SUBSCRIPTIONS, len(_SUBSCRIPTIONS))
    chosen = pool[: rng.randint(4, 6)]
    while sum(m.price for m in chosen) - max(m.price for m in chosen) < 55 and len(chosen) < 8:
        chosen.append(pool[len(chosen)])
    return chosen


def _tweak_hu(plan: _Plan, rng: random.Random) -> None:
    plan.cards = max(plan.cards, 1)
    plan.revolving_policy = rng.choice(("minimum", "partial"))
    plan.revolving_util = rng.uniform(0.6, 0.88)
    plan.overdue = rng.random() < 0.15
    plan.spend_ratio = rng.uniform(0.85, 1.05)
    plan.buffer_months = rng.uniform(0.1, 1.2)
    if rng.random() < 0.15:  # lower-priority traits too: only the primary must be high_utilization
        plan.pay = "irregular"
    if rng.random() < 0.3:
        plan.subscriptions = _heavy_subscriptions(rng)
    plan.overdrafts = 1 if rng.random() < 0.15 else 0
    plan.savings = rng.choice(("none", "static", "static", "builder"))


def _tweak_vib(plan: _Plan, rng: random.Random) -> None:
    plan.pay = "irregular"
    plan.buffer_months = rng.uniform(0.15, 0.5)
    plan.spend_ratio = rng.uniform(0.85, 1.05)
    if rng.random() < 0.25:
        plan.subscriptions = _heavy_subscriptions(rng)


def _tweak_cfb(plan: _Plan, rng: random.Random) -> None:
    if rng.random() < 0.75:  # overspending, sometimes with an overdraft on top
        plan.spend_ratio = rng.uniform(1.18, 1.4)
        plan.overdrafts = rng.choice((0, 0, 1, 2))
    else:  # balanced on paper, but the timing of bills causes overdrafts
        plan.spend_ratio = rng.uniform(0.86, 0.93)
        plan.overdrafts = rng.randint(2, 4)
    plan.buffer_months = rng.uniform(0.05, 0.45)
    plan.savings = rng.choice(("none", "static", "drawdown"))
    if rng.random() < 0.25:
        plan.subscriptions = _heavy_subscriptions(rng)


def _tweak_sh(plan: _Plan, rng: random.Random) -> None:
    plan.subscriptions = _heavy_subscriptions(rng)
    plan.price_change = len(plan.subscriptions) >= 5 and rng.random() < 0.3
    plan.telecom = [m for m in _TELECOM if rng.random() < 0.4]
    plan.meal_kit = rng.random() < 0.25
    plan.spend_ratio = rng.uniform(0.72, 0.9)
    plan.savings = rng.choice(("none", "static", "builder"))


def _tweak_sb(plan: _Plan, rng: random.Random) -> None:
    plan.spend_ratio = rng.uniform(0.6, 0.8)
    plan.savings = "builder"
    plan.missing_limit = False  # an unknown utilization must not cast doubt on "every card below 30 %"


def _tweak_gw(plan: _Plan, rng: random.Random) -> None:
    options = ("none", "static", "churn") + (("wealthy", "wealthy") if plan.income_band != "low" else ())
    plan.savings = rng.choice(options)


_TWEAKS = {HU: _tweak_hu, VIB: _tweak_vib, CFB: _tweak_cfb, SH: _tweak_sh, SB: _tweak_sb, GW: _tweak_gw}


# --------------------------------------------------------------------------------------------------
# One user's ledger


@dataclass
class _Card:
    account: Json
    issuer: _Issuer
    payer: Json  # the checking account the payments come from
    apr: float
    statement_day: int
    pay_offset: int  # days after the statement the autopay runs (the due date is day 25)
    util: float | None  # target utilization; None: the bank reports no limit
    policy: str = "full"  # full | minimum | partial
    opening: float = 0.0  # revolving balance carried into the data span
    overdue: bool = False
    weight: float = 1.0  # share of card purchases
    purchases: list[tuple[date, float]] = field(default_factory=list)


class _Builder:
    """Accounts and transactions of one user, with running window totals used for calibration."""

    def __init__(self, user_id: str, rng: random.Random, as_of: date, months: int) -> None:
        self.user_id, self.rng, self.end = user_id, rng, as_of
        self.start = as_of - timedelta(days=round(months * 30.44) - 1)
        self.window_start = as_of - timedelta(days=WINDOW_DAYS - 1)
        self.accounts: list[Json] = []
        self.txns: list[Json] = []
        self.cards: list[_Card] = []
        self.liabilities: list[Json] = []
        self.window_income = 0.0
        self.window_spending = 0.0
        self.monthly_net = 0.0
        self.card_share = 0.0
        self.paydays: list[date] = []
        self.token = "".join(rng.choices(_ALPHABET, k=24))

    def in_window(self, day: date) -> bool:
        return self.window_start <= day <= self.end

    def in_span(self, day: date) -> bool:
        return self.start <= day <= self.end

    def account(
        self, name: str, official: str | None, type_: str, subtype: str, *, business: bool = False
    ) -> Json:
        acct: Json = {
            "account_id": "".join(self.rng.choices(_ALPHABET, k=37)),
            "name": name,
            "official_name": official,
            "type": type_,
            "subtype": subtype,
            "holder_category": "business" if business else "individual",
            "balances": {"available": None, "current": 0.0, "limit": None, "iso_currency_code": "USD"},
            "mask": f"{self.rng.randrange(10000):04d}",
        }
        self.accounts.append(acct)
        return acct

    def add(
        self,
        acct: Json,
        day: date,
        amount: float,
        name: str,
        detailed: str,
        *,
        merchant: _Merchant | None = None,
        channel: str = "other",
        pending: bool = False,
        authorized: date | None = None,
    ) -> Json:
        merchant_name = merchant.name if merchant else None
        txn: Json = {
            "transaction_id": f"{self.token}{len(self.txns):05d}",
            "account_id": acct["account_id"],
            "date": day.isoformat(),
            "authorized_date": (authorized or day).isoformat(),
            "amount": round(float(amount), 2),  # always a JSON float, even for round sums
            "iso_currency_code": "USD",
            "name": name,
            "merchant_name": merchant_name,
            "merchant_entity_id": _entity_id(merchant_name) if merchant_name else None,
            "payment_channel": channel,
            "personal_finance_category": {"primary": _primary(detailed), "detailed": detailed},
            "pending": pending,
        }
        self.txns.append(txn)
        if not pending and acct["holder_category"] == "individual" and self.in_window(day):
            self._tally(acct, txn["amount"], detailed)
        return txn

    def _tally(self, acct: Json, amount: float, detailed: str) -> None:
        if acct["type"] == "depository" and amount < 0 and detailed in _PAYROLL:
            self.window_income -= amount
        elif amount > 0 and _primary(detailed) not in _NOT_SPENDING:
            self.window_spending += amount

    def purchase(
        self,
        acct: Json,
        day: date,
        amount: float,
        merchant: _Merchant,
        *,
        pending: bool = False,
        unresolved: float = 0.03,
    ) -> Json:
        """A merchant charge; now and then Plaid fails to resolve even a chain's merchant name."""
        rng = self.rng
        resolved = merchant if rng.random() >= unresolved else None
        name = rng.choice(merchant.variants).replace("{n}", f"{rng.randrange(10000):04d}")
        authorized = day if pending else day - timedelta(days=rng.choice((0, 0, 1, 1, 2)))
        return self.add(
            acct,
            day,
            amount,
            name,
            merchant.detailed,
            merchant=resolved,
            channel=merchant.channel,
            pending=pending,
            authorized=authorized,
        )

    def route(self) -> Json:
        """Where a purchase is paid from: one of the cards (by preference) or the debit card."""
        active = self.active_cards()
        if active and self.rng.random() < self.card_share:
            return self.rng.choices(active, [c.weight for c in active])[0].account
        return self.accounts[0]

    def active_cards(self) -> list[_Card]:
        return [c for c in self.cards if c.weight > 0]

    def card_for(self, acct: Json) -> _Card | None:
        return next((c for c in self.cards if c.account is acct), None)

    def charge(self, acct: Json, day: date, amount: float, merchant: _Merchant, **kw: Any) -> Json:
        """A posted purchase, remembered on the card so the statement cycle sees it."""
        txn = self.purchase(acct, day, amount, merchant, **kw)
        card = self.card_for(acct)
        if card is not None:
            card.purchases.append((day, txn["amount"]))
        return txn


# --------------------------------------------------------------------------------------------------
# Income


def _paydays(b: _Builder, kind: str) -> list[date]:
    """Paydays of a regular schedule, kept off the window's first day (+-1) so an inclusive or
    exclusive window start cannot move a whole paycheck in or out of the income figure."""
    days: list[date] = []
    for _ in range(50):
        days = [d for d in _schedule(b, kind) if b.in_span(d)]
        if all(abs((d - b.window_start).days) > 1 for d in days):
            break
    return days


def _schedule(b: _Builder, kind: str) -> list[date]:
    rng = b.rng
    if kind in ("weekly", "biweekly"):
        step = 7 if kind == "weekly" else 14
        first = b.start + timedelta(
            days=(rng.randrange(5) - b.start.weekday()) % 7 + 7 * rng.randrange(step // 7)
        )
        return [first + timedelta(days=step * i) for i in range((b.end - first).days // step + 1)]
    doms = (
        rng.choice(((1, 15), (15, 31), (5, 20))) if kind == "semimonthly" else (rng.choice((1, 15, 28, 31)),)
    )
    return sorted(_prev_business_day(d) for dom in doms for d in _monthly(b.start, b.end, dom))


def _irregular_paydays(b: _Builder) -> list[date]:
    """Contract deposits 50-70 days apart, the first early in the window so it holds at least three."""
    rng = b.rng
    first = b.window_start + timedelta(days=rng.randint(4, 20))
    days = [first]
    while (d := days[0] - timedelta(days=rng.randint(50, 70))) >= b.start:
        days.insert(0, d)
    while (d := days[-1] + timedelta(days=rng.randint(50, 70))) <= b.end:
        days.append(d)
    return [_prev_business_day(d) for d in days]


def _payroll(b: _Builder, plan: _Plan, checking: Json) -> None:
    rng = b.rng
    net = rng.uniform(*_ANNUAL_INCOME[plan.income_band]) * rng.uniform(0.72, 0.8)
    b.monthly_net = net / 12
    if plan.pay == "irregular":
        b.paydays = _irregular_paydays(b)
        payer = rng.choice(_CLIENTS)
        detailed = "INCOME_GIG_ECONOMY" if plan.v2_income else "INCOME_WAGES"
        names = (f"{payer} DIRECT DEP", f"{payer} ACH PMT {{n}}")
        amounts = [net / 6 * rng.uniform(0.65, 1.35) for _ in b.paydays]
    else:
        b.paydays = _paydays(b, plan.pay)
        payer = rng.choice(_EMPLOYERS)
        detailed = "INCOME_SALARY" if plan.v2_income else "INCOME_WAGES"
        names = (f"{payer} PAYROLL", f"{payer} DIR DEP PPD ID: {{n}}")
        spread = 0.08 if plan.pay == "weekly" else 0.02  # hourly shifts vary; salaries barely do
        amounts = [net / _PERIODS[plan.pay] * rng.uniform(1 - spread, 1 + spread) for _ in b.paydays]
    employer = _Merchant(payer.title() if rng.random() < 0.5 else None, names, detailed, "other")
    for day, amount in zip(b.paydays, amounts, strict=True):
        b.purchase(checking, day, -amount, employer, unresolved=0.0)


# --------------------------------------------------------------------------------------------------
# Fixed bills and subscriptions


def _rent(b: _Builder, checking: Json) -> None:
    rng = b.rng
    amount = round(b.monthly_net * rng.uniform(0.22, 0.32) / 5) * 5
    landlord = rng.choice(_LANDLORDS)
    for dom in rng.sample((1, 2, 3, 5), 4):  # a dom whose payments stay off the window's first day
        days = [_next_business_day(d) for d in _monthly(b.start, b.end, dom)]
        if all(abs((d - b.window_start).days) > 1 for d in days):
            break
    for day in days:
        if b.in_span(day):
            b.purchase(checking, day, amount, landlord, unresolved=0.0)


def _electricity(b: _Builder, plan: _Plan) -> None:
    rng = b.rng
    base = rng.uniform(55, 110) * {"low": 0.85, "middle": 1.0, "high": 1.4}[plan.income_band]
    active = b.active_cards()
    acct = active[-1].account if active and rng.random() < 0.7 else b.accounts[0]
    dom = rng.randint(8, 22)
    for day in _monthly(b.start, b.end, dom):
        day += timedelta(days=rng.randint(-2, 2))
        if b.in_span(day):
            amount = base * _SEASON[day.month - 1] * rng.lognormvariate(0, 0.18)
            b.charge(acct, day, amount, _UTILITIES[plan.region], unresolved=0.0)


def _recurring(
    b: _Builder, merchant: _Merchant, price: float, jitter: Sequence[int], *, change_at: date | None = None
) -> None:
    """A monthly charge on a fixed day (+ jitter), stable to the cent or a few cents (sales tax)."""
    rng = b.rng
    acct = b.route()
    dom, cents = rng.randint(1, 28), rng.random() < 0.3
    for day in _monthly(b.start, b.end, dom):
        day += timedelta(days=rng.choice(jitter))
        if b.in_span(day):
            amount = price * (1.12 if change_at and day >= change_at else 1.0)
            b.charge(acct, day, amount + (rng.randint(-3, 3) / 100 if cents else 0), merchant, unresolved=0.0)


def _subscriptions(b: _Builder, plan: _Plan) -> None:
    rng = b.rng
    # Heavy users' charges post on the day or a day late, so gaps stay 29-32 days; a light user's
    # may wander +-2 days (it only matters if that made them *less* detectable).
    jitter = (0, 0, 0, 1) if len(plan.subscriptions) >= 4 else (-2, -1, 0, 0, 1, 2)
    cheapest = min(plan.subscriptions, key=lambda m: m.price) if plan.price_change else None
    change_at = b.window_start + timedelta(days=rng.randint(60, 120))
    for merchant in plan.subscriptions:
        _recurring(b, merchant, merchant.price, jitter, change_at=change_at if merchant is cheapest else None)
    for merchant in plan.telecom:
        _recurring(b, merchant, rng.choice((59.99, 64.99, 75.00, 79.99, 89.99)), (0, 0, 0, 1))
    if plan.meal_kit:
        _meal_kit(b)


def _meal_kit(b: _Builder) -> None:
    rng = b.rng
    acct, price = b.route(), rng.choice((59.99, 69.99, 79.99))
    day = b.start + timedelta(days=rng.randrange(7))
    while day <= b.end:
        b.charge(
            acct, min(b.end, day + timedelta(days=rng.choice((0, 0, 0, 1)))), price, _MEAL_KIT, unresolved=0.0
        )
        day += timedelta(days=7)


def _overdraft_fees(b: _Builder, count: int, checking: Json) -> None:
    rng = b.rng
    window = (b.end - b.window_start).days
    for i in range(count):
        day = b.window_start + timedelta(days=rng.randint(7, window - 2))
        nsf = i > 0 and rng.random() < 0.25
        b.add(
            checking,
            day,
            rng.choice((34.0, 35.0, 36.0)),
            "NSF RETURNED ITEM FEE" if nsf else rng.choice(("OVERDRAFT ITEM FEE", "OD FEE")),
            "BANK_FEES_INSUFFICIENT_FUNDS" if nsf else "BANK_FEES_OVERDRAFT_FEES",
        )


# --------------------------------------------------------------------------------------------------
# Variable spending, calibrated so window spending = spend_ratio x window income


_Event = tuple[date, float, _Merchant, bool]  # day, raw amount, merchant, elastic


def _variable_spending(b: _Builder, plan: _Plan) -> None:
    target = plan.spend_ratio * b.window_income
    budget = max(target - b.window_spending, 0.15 * target)
    # Visits grow slowly with income; the calibration below makes the tickets carry the rest.
    visits = min(1.6, max(0.7, (b.monthly_net / 4000) ** 0.35)) * ((b.end - b.start).days + 1) / 30.44
    events = _grocery_events(b, plan)
    for name, category in _CATEGORIES.items():
        if name != "gas" or plan.has_car:
            events.extend(_category_events(b, category, visits * b.rng.uniform(0.5, 1.5)))
    latest = max(range(len(events)), key=lambda i: events[i][0])
    events[latest] = (b.end, *events[latest][1:])  # a posted transaction on as_of anchors the window
    for day, amount, merchant in _calibrate(b, events, budget):
        b.charge(b.route(), day, amount, merchant, unresolved=1.0 if merchant.name is None else 0.03)


def _calibrate(b: _Builder, events: list[_Event], budget: float) -> Iterator[tuple[date, float, _Merchant]]:
    """Scale the tickets so the window total is exactly ``budget``: small tickets (coffee, gas) move
    only with the cube root-ish of the scale, the elastic ones (groceries, dining, shopping) take the rest."""

    def window_sum(elastic: bool) -> float:
        return sum(a for d, a, _, e in events if e is elastic and b.in_window(d))

    scale = budget / (window_sum(True) + window_sum(False))
    firm = scale**0.3
    rest = budget - firm * window_sum(False)
    elastic = rest / window_sum(True) if rest > 0 else scale
    firm = firm if rest > 0 else scale
    for day, amount, merchant, is_elastic in events:
        yield day, max(1.0, amount * (elastic if is_elastic else firm)), merchant


def _category_events(b: _Builder, category: _Category, months: float) -> list[_Event]:
    rng = b.rng
    merchants = rng.sample(category.merchants, min(len(category.merchants), rng.randint(*category.picks)))
    weights = [1 / (i + 1) for i in range(len(merchants))]  # a favourite, then the rest
    count = round(category.per_month * months)
    span = (b.end - b.start).days + 1
    return [
        (
            b.start + timedelta(days=rng.randrange(span)),
            _lognormal(rng, category.mean, category.sigma),
            rng.choices(merchants, weights)[0],
            category.elastic,
        )
        for _ in range(count)
    ]


def _grocery_events(b: _Builder, plan: _Plan) -> list[_Event]:
    """Weekly-ish trips (every 2-12 days) split over 2-3 stores with widely varying baskets."""
    rng = b.rng
    stores = rng.sample(_GROCERS[plan.region], rng.randint(2, 3))
    weights = (0.6, 0.3, 0.1)[: len(stores)]
    days: list[date] = []
    day = b.start + timedelta(days=rng.randrange(5))
    while day <= b.end:
        days.append(day)
        day += timedelta(days=rng.choice((2, 3, 4, 5, 6, 7, 8, 9, 10, 12)))
    return [
        (d, _lognormal(rng, _GROCERY_MEAN, _GROCERY_SIGMA), rng.choices(stores, weights)[0], True)
        for d in days
    ]


def _refunds(b: _Builder) -> None:
    """Returns: money back onto the card (negative amount), same merchant and category."""
    rng = b.rng
    cards = {c.account["account_id"]: c for c in b.cards}
    primary = "GENERAL_MERCHANDISE"
    bought = [t for t in b.txns if t["account_id"] in cards and t["amount"] > 0 and _primary_of(t) == primary]
    for txn in rng.sample(bought, min(len(bought), rng.choice((0, 0, 1, 1, 2)))):
        day = date.fromisoformat(txn["date"]) + timedelta(days=rng.randint(3, 20))
        if day <= b.end:
            iso, amount = day.isoformat(), -txn["amount"]
            tid = f"{b.token}{len(b.txns):05d}"
            b.txns.append(dict(txn, transaction_id=tid, date=iso, authorized_date=iso, amount=amount))
            cards[txn["account_id"]].purchases.append((day, amount))


def _pending(b: _Builder) -> None:
    """A few card or debit purchases of the last two days that have not posted yet."""
    rng = b.rng
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        category = _CATEGORIES[rng.choice(("dining", "coffee", "shopping"))]
        day, amount = (
            b.end - timedelta(days=rng.randint(0, 1)),
            _lognormal(rng, category.mean, category.sigma),
        )
        b.purchase(b.route(), day, amount, rng.choice(category.merchants), pending=True)


def _primary_of(txn: Json) -> str:
    return str(txn["personal_finance_category"]["primary"])


# --------------------------------------------------------------------------------------------------
# Credit cards: statement cycles, payments, interest, liabilities


def _open_cards(b: _Builder, plan: _Plan, checking: Json) -> None:
    rng = b.rng
    issuers = rng.sample(_ISSUERS, plan.cards + plan.dormant_card)
    for i, issuer in enumerate(issuers):
        revolving = i == 0 and plan.persona == HU
        card = _Card(
            account=b.account(issuer.name, issuer.official, "credit", "credit card"),
            issuer=issuer,
            payer=checking,
            apr=rng.choice((19.99, 21.49, 22.99, 24.99, 26.99, 28.49)),
            statement_day=rng.randint(1, 28),
            pay_offset=rng.randint(18, 23),
            util=plan.revolving_util if revolving else rng.uniform(0.04, 0.22),
            weight=rng.uniform(1.0, 2.0) if i == 0 else rng.uniform(0.6, 1.0),
        )
        if revolving:
            _make_revolving(rng, card, plan, b.monthly_net)
        if plan.missing_limit and 0 < i == plan.cards - 1:
            card.util = None  # no limit reported (never on the card that makes a user high_utilization)
        if i < plan.cards:  # the extra one stays in the drawer: no purchases, no balance
            b.cards.append(card)
        else:
            _close_dormant(b, card)
    b.card_share = rng.uniform(0.55, 0.9) if b.cards else 0.0
    if plan.revolving_policy and len(b.cards) == 1:
        b.card_share = rng.uniform(0.2, 0.4)  # the only card is the struggling one: mostly debit now


def _make_revolving(rng: random.Random, card: _Card, plan: _Plan, monthly_net: float) -> None:
    """high_utilization's card: carries a balance from before the data starts. A minimum-only payer
    no longer uses it, so the balance (and the minimum) shrinks ~1 % a month and each payment stays
    within 10 % of the current minimum."""
    card.policy, card.overdue = plan.revolving_policy, plan.overdue
    card.opening = round(monthly_net * rng.uniform(0.8, 1.6), 2)
    if card.policy == "minimum":
        card.weight = 0.0
    else:  # still in use, but not the everyday card: the balance creeps up rather than balloons
        card.weight = rng.uniform(0.2, 0.5)


def _close_dormant(b: _Builder, card: _Card) -> None:
    limit = float(b.rng.randrange(2, 30) * 500)
    card.account["balances"].update(current=0.0, limit=limit, available=limit)
    b.liabilities.append(_liability(card, None, None))


def _minimum(balance: float, interest: float) -> float:
    if balance <= 0:
        return 0.0
    return round(min(balance, max(35.0, balance * 0.01 + interest)), 2)


_Payment = tuple[date, float]


@dataclass
class _Cycle:
    """Where a card stands after a statement."""

    date: date
    balance: float
    minimum: float
    interest: float = 0.0
    revolving: float = 0.0


def _run_card(b: _Builder, card: _Card) -> None:
    """Walk the statement cycles: pay the previous statement, charge interest on what revolves, add
    the cycle's purchases. Pay-in-full cards always get >= $60 a cycle (a top-up purchase if
    needed), so a full payment is never within 10 % of a $35 minimum."""
    statements = [d for d in _monthly(b.start, b.end, card.statement_day) if d <= b.end]
    skipped = _skipped_statement(card, statements, b.end)
    purchases = sorted(card.purchases)
    balance = card.opening
    cycle = _Cycle(statements[0], card.opening, _minimum(card.opening, 0.0))
    last_payment: _Payment | None = None
    for stmt in statements[1:]:
        paid, fee, payment = _pay(b, card, cycle, skipped)
        last_payment = payment or last_payment
        revolving = max(cycle.balance - paid, 0.0) if card.policy != "full" else 0.0
        interest = _charge_interest(b, card, stmt, revolving)
        spent = sum(a for d, a in purchases if cycle.date < d <= stmt)
        balance += fee - paid + interest + spent + _top_up(b, card, cycle.date, stmt, spent)
        cycle = _Cycle(stmt, round(balance, 2), _minimum(balance, interest), interest, revolving)
    paid, fee, payment = _pay(b, card, cycle, skipped)
    balance += fee - paid + sum(a for d, a in purchases if d > cycle.date)
    _settle_card(b, card, round(balance, 2), cycle, payment or last_payment)


def _skipped_statement(card: _Card, statements: list[date], end: date) -> date | None:
    """An overdue card misses the payment of the latest statement whose due date has passed."""
    if not card.overdue:
        return None
    due = [s for s in statements if s + timedelta(days=25) < end]
    return due[-1] if due else None


def _pay(
    b: _Builder, card: _Card, cycle: _Cycle, skipped: date | None
) -> tuple[float, float, _Payment | None]:
    """Pay the statement of ``cycle`` from checking: ``(paid, late fee, payment or None)``."""
    day = _next_business_day(cycle.date + timedelta(days=card.pay_offset))
    if cycle.balance <= 0 or not b.in_span(day):
        return 0.0, 0.0, None
    if cycle.date == skipped:
        fee = b.rng.choice((29.0, 35.0, 40.0))
        b.add(card.account, min(b.end, day + timedelta(days=8)), fee, "LATE FEE", "BANK_FEES_LATE_FEES")
        return 0.0, fee, None
    if card.policy == "full":
        amount = cycle.balance
    elif card.policy == "minimum":
        amount = cycle.minimum
    else:
        amount = round(min(cycle.balance, cycle.minimum * b.rng.uniform(1.6, 3.0)), 2)
    detailed = "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"
    b.add(card.payer, day, amount, card.issuer.payment_name, detailed)
    b.add(card.account, day, -amount, b.rng.choice(_CARD_SIDE_PAYMENT), detailed)
    return amount, 0.0, (day, amount)


def _charge_interest(b: _Builder, card: _Card, stmt: date, revolving: float) -> float:
    if revolving <= 0.005:
        return 0.0
    interest = round(revolving * card.apr / 1200, 2)
    if b.in_span(stmt):
        b.add(card.account, stmt, interest, "INTEREST CHARGE ON PURCHASES", "BANK_FEES_INTEREST_CHARGE")
    return interest


def _top_up(b: _Builder, card: _Card, prev: date, stmt: date, spent: float) -> float:
    if card.policy != "full" or spent >= 60 or stmt < b.start:
        return 0.0
    merchant = b.rng.choice(_CATEGORIES["shopping"].merchants[:3])
    first = max(prev + timedelta(days=1), b.start)
    day = stmt - timedelta(days=b.rng.randint(0, min(10, (stmt - first).days)))
    return float(b.purchase(card.account, day, b.rng.uniform(60, 120), merchant, unresolved=0.0)["amount"])


def _settle_card(
    b: _Builder, card: _Card, balance: float, cycle: _Cycle, last_payment: _Payment | None
) -> None:
    limit = _limit(b.rng, card, balance)
    card.account["balances"].update(
        current=balance, limit=limit, available=None if limit is None else round(max(limit - balance, 0.0), 2)
    )
    b.liabilities.append(_liability(card, cycle, last_payment))


def _limit(rng: random.Random, card: _Card, balance: float) -> float | None:
    """The limit follows from the balance and the target utilization: to the nearest $100 for the
    revolving card (stays within a few points of 60-88 %), rounded *up* to $500 for the others."""
    if card.util is None:
        return None
    if balance <= 0:
        return float(rng.randrange(2, 30) * 500)
    if card.policy != "full":
        return float(max(500, round(balance / card.util / 100) * 100))
    return float(max(500, math.ceil(balance / card.util / 500) * 500))


def _liability(card: _Card, cycle: _Cycle | None, last_payment: _Payment | None) -> Json:
    """Plaid's liabilities.credit[] entry, from the latest statement (``None``: never used)."""
    aprs = [
        {
            "apr_percentage": card.apr,
            "apr_type": "purchase_apr",
            "balance_subject_to_apr": round(cycle.revolving, 2) if cycle else 0.0,
            "interest_charge_amount": cycle.interest if cycle else 0.0,
        }
    ]
    if card.statement_day % 3 == 0:  # some issuers also list the (unused) cash-advance APR
        aprs.append(
            {
                "apr_percentage": 29.99,
                "apr_type": "cash_apr",
                "balance_subject_to_apr": 0.0,
                "interest_charge_amount": 0.0,
            }
        )
    issued = cycle.date if cycle else None
    return {
        "account_id": card.account["account_id"],
        "aprs": aprs,
        "is_overdue": card.overdue,
        "last_payment_amount": last_payment[1] if last_payment else None,
        "last_payment_date": last_payment[0].isoformat() if last_payment else None,
        "last_statement_balance": cycle.balance if cycle else 0.0,
        "last_statement_issue_date": issued.isoformat() if issued else None,
        "minimum_payment_amount": cycle.minimum if cycle else 0.0,
        "next_payment_due_date": (issued + timedelta(days=25)).isoformat() if issued else None,
    }


# --------------------------------------------------------------------------------------------------
# Savings


def _open_savings(b: _Builder, plan: _Plan) -> Json | None:
    if plan.savings == "none":
        return None
    name, official, subtype = b.rng.choice(_SAVINGS)
    if b.rng.random() < 0.1:  # a CD on the side: balance only, no flows
        cd = b.account("12 Month CD", "Ally 12 Month High Yield CD", "depository", "cd")
        cd["balances"].update(current=float(b.rng.randrange(2, 26) * 1000), available=None)
    return b.account(name, official, "depository", subtype)


def _savings_flows(b: _Builder, plan: _Plan, checking: Json, savings: Json) -> None:
    """Flows of the plan's savings kind ("static": a balance, no flows), then the balance they end at."""
    flows = _SAVINGS_FLOWS.get(plan.savings)
    net = flows(b, plan, checking, savings) if flows else 0.0
    scale = {"low": 0.5, "middle": 1.0, "high": 2.5}[plan.income_band]
    low, high = _SAVINGS_OPENING.get(plan.savings, (200 * scale, 20_000 * scale))
    current = round(b.rng.uniform(low, high) + net, 2)
    savings["balances"].update(current=current, available=current)


def _wealthy_transfers(b: _Builder, plan: _Plan, checking: Json, savings: Json) -> float:
    """Small top-ups on a big balance (>= $45k): < $200/month and < 1 % growth over the window."""
    return _monthly_transfers(b, checking, savings, round(b.rng.uniform(25, 75)))


def _churn_transfers(b: _Builder, plan: _Plan, checking: Json, savings: Json) -> float:
    """Money parked, then taken back out with a little more: net inflow < 0."""
    amount = round(b.rng.uniform(100, 400))
    first = b.window_start + timedelta(days=b.rng.randint(10, 80))
    back = first + timedelta(days=b.rng.randint(20, 80))
    return _transfer(b, checking, savings, first, amount) - _transfer(
        b, savings, checking, back, amount + b.rng.randint(20, 200)
    )


def _drawdown_transfers(b: _Builder, plan: _Plan, checking: Json, savings: Json) -> float:
    """Covering shortfalls from savings."""
    days = [b.window_start + timedelta(days=b.rng.randint(10, 170)) for _ in range(b.rng.randint(1, 2))]
    return -sum(_transfer(b, savings, checking, day, round(b.rng.uniform(200, 700))) for day in days)


def _builder_transfers(b: _Builder, plan: _Plan, checking: Json, savings: Json) -> float:
    """>= $350/month into savings (75 % over the $200 rule even if a month falls out of the window)."""
    monthly = max(350, round(b.monthly_net * b.rng.uniform(0.08, 0.18) / 25) * 25)
    if plan.pay in ("weekly", "biweekly") and b.rng.random() < 0.5:  # "pay yourself first" per paycheck
        per_pay = round(monthly * 12 / _PERIODS[plan.pay] / 5) * 5 + 5
        return sum(
            _transfer(b, checking, savings, d + timedelta(days=1), per_pay)
            for d in b.paydays
            if d + timedelta(days=1) <= b.end
        )
    return _monthly_transfers(b, checking, savings, monthly)


def _monthly_transfers(b: _Builder, checking: Json, savings: Json, amount: float) -> float:
    dom = b.rng.randint(2, 27)
    return sum(
        _transfer(b, checking, savings, d, amount) for d in _monthly(b.start, b.end, dom) if b.in_span(d)
    )


def _transfer(b: _Builder, source: Json, target: Json, day: date, amount: float) -> float:
    """Money between own accounts: TRANSFER_OUT leaving one, TRANSFER_IN (negative) entering the other."""
    if not b.in_span(day):
        return 0.0
    to_savings = target["subtype"] != "checking"
    b.add(
        source,
        day,
        amount,
        f"ONLINE TRANSFER TO {'SAV' if to_savings else 'CHK'} XXXXXX{target['mask']}",
        "TRANSFER_OUT_SAVINGS" if to_savings else "TRANSFER_OUT_ACCOUNT_TRANSFER",
    )
    b.add(
        target,
        day,
        -amount,
        f"ONLINE TRANSFER FROM {'CHK' if to_savings else 'SAV'} XXXXXX{source['mask']}",
        "TRANSFER_IN_ACCOUNT_TRANSFER" if to_savings else "TRANSFER_IN_SAVINGS",
    )
    return amount


_SAVINGS_OPENING = {"wealthy": (45_000.0, 120_000.0), "drawdown": (1500.0, 4000.0)}
_SAVINGS_FLOWS: dict[str, Callable[[_Builder, _Plan, Json, Json], float]] = {
    "builder": _builder_transfers,
    "wealthy": _wealthy_transfers,
    "churn": _churn_transfers,
    "drawdown": _drawdown_transfers,
}


# --------------------------------------------------------------------------------------------------
# Business accounts (excluded from analysis: they carry their own subscriptions and revenue)


def _business(b: _Builder) -> None:
    rng = b.rng
    checking = b.account(
        "Business Checking", "Chase Business Complete Checking", "depository", "checking", business=True
    )
    card = _business_card(b, checking) if rng.random() < 0.4 else None
    span = (b.end - b.start).days + 1
    for _ in range(span // 15):
        b.purchase(checking, b.start + timedelta(days=rng.randrange(span)), -rng.uniform(1500, 8000), _CLIENT)
    for merchant in rng.sample(_BUSINESS_SAAS, 3):
        seats, dom = rng.randint(1, 4), rng.randint(1, 28)
        for day in filter(b.in_span, _monthly(b.start, b.end, dom)):
            _business_charge(b, card or checking, day, merchant.price * seats, merchant)
    for _ in range(span // 4):
        day = b.start + timedelta(days=rng.randrange(span))
        _business_charge(b, card or checking, day, _lognormal(rng, 120, 0.9), rng.choice(_BUSINESS_EXPENSES))
    if card is not None:
        _run_card(b, card)
    current = round(rng.uniform(5000, 40000), 2)
    checking["balances"].update(current=current, available=current)


def _business_card(b: _Builder, checking: Json) -> _Card:
    issuer = _BUSINESS_CARD
    account = b.account(issuer.name, issuer.official, "credit", "credit card", business=True)
    return _Card(account, issuer, checking, 21.24, b.rng.randint(1, 28), 20, b.rng.uniform(0.1, 0.45))


def _business_charge(b: _Builder, payer: _Card | Json, day: date, amount: float, merchant: _Merchant) -> None:
    if isinstance(payer, _Card):
        payer.purchases.append((day, b.purchase(payer.account, day, amount, merchant)["amount"]))
    else:
        b.purchase(payer, day, amount, merchant)


# --------------------------------------------------------------------------------------------------
# Assembly


def _persona_for(index: int, seed: int) -> str:
    """Each block of six consecutive users holds every persona once, in a seeded order."""
    order = list(PERSONAS)
    random.Random(f"{seed}/block/{index // 6}").shuffle(order)
    return order[index % 6]


_AGE_WEIGHTS = {VIB: (0.25, 0.3, 0.2, 0.12, 0.08, 0.05), SB: (0.06, 0.16, 0.2, 0.2, 0.2, 0.18)}
_INCOME_WEIGHTS = {
    HU: (0.4, 0.45, 0.15),
    VIB: (0.45, 0.4, 0.15),
    CFB: (0.45, 0.4, 0.15),
    SH: (0.25, 0.5, 0.25),
    SB: (0.15, 0.45, 0.4),
    GW: (0.3, 0.45, 0.25),
}


def _demographics(persona: str, index: int, seed: int, rng: random.Random) -> tuple[str, str, str]:
    """The first users of each persona cycle through every group (so every persona appears in every
    group from 36 users on); later ones are drawn with a mild persona tilt, as in real populations."""
    k, p = index // 6, PERSONAS.index(persona) + seed
    age = (
        AGE_BANDS[(k + p) % 6]
        if k < 6
        else rng.choices(AGE_BANDS, _AGE_WEIGHTS.get(persona, (0.12, 0.22, 0.2, 0.18, 0.16, 0.12)))[0]
    )
    region = REGIONS[(k + 2 * p) % 4] if k < 4 else rng.choices(REGIONS, (0.18, 0.21, 0.38, 0.23))[0]
    band = INCOME_BANDS[(k + p) % 3] if k < 3 else rng.choices(INCOME_BANDS, _INCOME_WEIGHTS[persona])[0]
    return age, region, band


def build_user(
    index: int, seed: int = 0, as_of: date = DEFAULT_AS_OF, months: int = 7, *, largest: bool = False
) -> tuple[Json, Json]:
    """User ``index`` of the population for ``seed``: its upload record and its ground-truth label.
    ``largest``: every account and recurring stream the generator can give one user (size tests)."""
    rng = random.Random(f"{seed}/user/{index}")
    persona = _persona_for(index, seed)
    plan = _plan(persona, rng, _demographics(persona, index, seed, rng))
    if largest:
        _maximize(plan)
    b = _Builder(f"syn-{seed}-{index:06d}", rng, as_of, months)
    name, official = rng.choice(_CHECKING)
    checking = b.account(name, official, "depository", "checking")
    savings = _open_savings(b, plan)
    _payroll(b, plan, checking)  # first: balances and budgets scale with income
    _open_cards(b, plan, checking)
    _spend(b, plan, checking)
    if savings is not None:
        _savings_flows(b, plan, checking, savings)
    if plan.business:
        _business(b)
    _settle_checking(b, plan, checking)
    b.txns.sort(key=lambda t: t["date"], reverse=True)  # newest first, as Plaid returns them
    user = {
        "user_id": b.user_id,
        "accounts": b.accounts,
        "transactions": b.txns,
        "liabilities": {"credit": b.liabilities, "mortgage": [], "student": []},
    }
    label = {
        "user_id": b.user_id,
        "persona": persona,
        "age_band": plan.age_band,
        "region": plan.region,
        "income_band": plan.income_band,
    }
    return user, label


def _spend(b: _Builder, plan: _Plan, checking: Json) -> None:
    _rent(b, checking)
    if plan.electric:
        _electricity(b, plan)
    _subscriptions(b, plan)
    _overdraft_fees(b, plan.overdrafts, checking)
    _variable_spending(b, plan)
    _refunds(b)
    _pending(b)
    for card in list(b.cards):
        _run_card(b, card)


def _settle_checking(b: _Builder, plan: _Plan, checking: Json) -> None:
    current = round(max(20.0, plan.buffer_months * b.window_spending / 6), 2)
    pending = sum(t["amount"] for t in b.txns if t["pending"] and t["account_id"] == checking["account_id"])
    checking["balances"].update(current=current, available=round(current - pending, 2))


def iter_users(
    users: int, seed: int = 0, as_of: date = DEFAULT_AS_OF, months: int = 7
) -> Iterator[tuple[Json, Json]]:
    """Users one at a time (lazily): ``(user, label)``."""
    for index in range(users):
        yield build_user(index, seed, as_of, months)


def generate(
    users: int = 100,
    seed: int = 0,
    out: Path = Path("synthetic_users.jsonl"),
    as_of: date = DEFAULT_AS_OF,
    months: int = 7,
) -> GenerationSummary:
    """Write ``users`` synthetic users to ``out`` (JSON Lines) and their labels to
    ``out.with_suffix(".labels.jsonl")``, streaming: one user in memory at a time."""
    if users < 0:
        raise ValueError("users must be >= 0")
    if months < 6:
        raise ValueError("months must be >= 6: personas are defined over a 180-day window")
    out = Path(out)
    labels_path = out.with_suffix(".labels.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    transactions = 0
    with out.open("w", encoding="utf-8") as data, labels_path.open("w", encoding="utf-8") as labels:
        for user, label in iter_users(users, seed, as_of, months):
            data.write(json.dumps(user, separators=(",", ":")) + "\n")
            labels.write(json.dumps(label, separators=(",", ":")) + "\n")
            counts[label["persona"]] += 1
            transactions += len(user["transactions"])
    return GenerationSummary(users, transactions, {p: counts[p] for p in PERSONAS}, out, labels_path)
