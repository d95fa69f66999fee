"""The shared guardrails every user-facing text must pass: tone lexicon, grounding (unit-aware),
disclosure and length checks, and the fact table's round trip through the event contract."""

from __future__ import annotations

import pytest

from spendsense_shared.guardrails.checks import DISCLOSURE, check_text
from spendsense_shared.guardrails.contacts import find_contacts
from spendsense_shared.guardrails.facts import Fact, FactTable, citable, from_citable
from spendsense_shared.guardrails.grounding import check_grounding, extract_claims
from spendsense_shared.guardrails.tone import TONE_LEXICON, check_tone

# One example per lexicon entry: each must be caught by that entry.
SHAMING = {
    "overspending": "You're overspending every month.",
    "irresponsible": "That is irresponsible.",
    "wasting": "You are wasting money on streaming.",
    "bad_with_money": "Some people are just bad with money.",
    "shame": "You should be ashamed of this balance.",
    "reckless": "Reckless card use got you here.",
    "careless": "A careless habit.",
    "lazy": "Lazy budgeting shows.",
    "insult": "This is a stupid way to pay.",
    "failure": "You failed to pay on time.",
    "out_of_control": "Your spending is out of control.",
    "poor_choices": "These are poor financial choices.",
    "beyond_means": "You are living beyond your means.",
    "absolutes": "You always pay late.",
    "commands": "You must cut this now.",
    "blame": "This is your own fault.",
    "frivolous": "Frivolous purchases add up.",
    "cannot_manage": "You can't manage a budget.",
    "lecture": "This should be a wake-up call.",
    "alarmist": "You are drowning in debt.",
    "broke": "You are broke.",
    "account_threat": "Your account is frozen.",
    "urgency": "URGENT: read this.",
    "contact_lure": "Call 555-0100 about your refund.",
    "threat": "Pay now or face legal action.",
}
SUPPORTIVE = [
    "Your Visa ending in 4523 is at 68 % utilization ($3,400 of a $5,000 limit).",
    "Spending was $1,200 more than income over the last 180 days.",
    "You have 6 recurring charges adding up to about $128 a month.",
    "Setting up autopay helps avoid late fees, and you can still pay more whenever you like.",
    "A waiver of fees may apply; this guide never assumes anything about your situation.",
]


def test_every_lexicon_entry_has_a_test_example() -> None:
    assert set(SHAMING) == {name for name, _ in TONE_LEXICON}


@pytest.mark.parametrize(("rule", "text"), sorted(SHAMING.items()))
def test_shaming_language_fails_the_tone_check(rule: str, text: str) -> None:
    result = check_tone(text)
    assert not result.passed
    assert rule in {hit["rule"] for hit in result.hits}


@pytest.mark.parametrize("text", SUPPORTIVE)
def test_supportive_neutral_language_passes(text: str) -> None:
    assert check_tone(text).passed, check_tone(text).hits


def test_typographic_apostrophes_and_case_do_not_bypass_the_lexicon() -> None:
    assert not check_tone("YOU\u2019RE OVERSPENDING").passed
    assert not check_tone("you\u2019ve failed").passed


# -- grounding ----------------------------------------------------------------------------------------


def facts() -> FactTable:
    return FactTable(
        [
            Fact("card.name", "text", "Visa 7-Eleven Rewards", "Visa 7-Eleven Rewards", untrusted=True),
            Fact("card.mask", "mask", "4523", "4523"),
            Fact("card.utilization", "percent", 68.0, "68 %", raw=0.6812),
            Fact("card.balance", "usd", 3400.0, "$3,400", raw=3400.0),
            Fact("card.limit", "usd", 5000.0, "$5,000", raw=5000.0),
            Fact("card.minimum_payment", "usd", 24.99, "$24.99", raw=24.99),
            Fact("window.days", "days", 180.0, "180 days", raw=180),
            Fact("income.buffer_months", "months", 0.4, "0.4 months", raw=0.43),
            Fact("subs.count", "count", 6.0, "6", raw=6),
            Fact("subs.changed.date", "date", "2026-08-13", "August 13, 2026"),
        ]
    )


def test_number_words_in_look_alike_letters_are_checked_not_a_crash() -> None:
    """Untrusted text (an LLM's) may spell a number word with letters the case-insensitive patterns take
    for ASCII ones (the long s, the Kelvin sign): the claim is checked as the word it reads as."""
    assert check_grounding("You have \u017fix recurring charges.", facts()).passed
    ungrounded = check_grounding(
        "You have \u017feventy recurring charges and \u017fixty-eight percent.", facts()
    )
    assert not ungrounded.passed
    assert [c.value for c in ungrounded.unmatched] == [70.0]  # "sixty-eight percent" is the 68 % fact


@pytest.mark.parametrize(
    "text",
    [
        "Your Visa 7-Eleven Rewards ending in 4523 is at 68 % utilization ($3,400 of a $5,000 limit).",
        "Your card is at 68% utilization, or 68 percent.",
        "The minimum payment is $24.99 over the last 180 days.",
        "Your checking covers 0.4 months of spending across 6 recurring charges.",
        "The price changed on August 13, 2026 (Aug 13; 2026-08-13; 8/13/2026).",
        "A balance of $3.4k against a limit of 5,000 dollars.",
        "Utilization of 68.1 % is the unrounded figure.",
        "No figures at all in this sentence.",
    ],
)
def test_numbers_that_match_facts_pass(text: str) -> None:
    result = check_grounding(text, facts())
    assert result.passed, result.to_dict()


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("Your balance is $3,900.", "$3,900"),
        ("You could save $9,999 a year.", "$9,999"),
        ("Utilization is 42 %.", "42 %"),
        ("Your score could rise by 50 points.", "50"),
        ("Your card ending in 9999 is at 68 %.", "ending in 9999"),
        ("The price changed on August 14, 2026.", "August 14, 2026"),
        ("Pay it off within 90 days.", "90 days"),
        ("The balance was $3,401.", "$3,401"),
    ],
)
def test_invented_numbers_fail(text: str, bad: str) -> None:
    result = check_grounding(text, facts())
    assert not result.passed
    assert bad in [c.text for c in result.unmatched]


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("Your card is at $68 of utilization.", "$68"),  # a percent fact cited as dollars
        ("Your limit is 5,000 %.", "5,000 %"),  # dollars cited as a percent
        ("Covered for 180 months.", "180 months"),  # days cited as months
        ("Within 0.4 days.", "0.4 days"),  # months cited as days
        ("You have 68 recurring charges.", "68"),  # a percent cited as a count
        ("Save for 6 weeks.", "6 weeks"),  # no fact is in weeks
    ],
)
def test_unit_mismatches_fail(text: str, bad: str) -> None:
    result = check_grounding(text, facts())
    assert not result.passed
    assert bad in [c.text for c in result.unmatched]


def test_digits_inside_names_are_not_claims() -> None:
    assert check_grounding("Your Visa 7-Eleven Rewards card.", facts()).passed
    assert not check_grounding("Your 7-Eleven card.", facts()).passed  # not a name from the facts


def test_claims_are_extracted_with_units() -> None:
    units = [
        (c.unit, c.value) for c in extract_claims("$1,200.50, 30 %, 18-month, 59 days, 2026-10-31, x4523, 3")
    ]
    assert units == [
        ("usd", 1200.5),
        ("percent", 30.0),
        ("months", 18.0),
        ("days", 59.0),
        ("date", "2026-10-31"),
        ("mask", "4523"),
        ("count", 3.0),
    ]


# -- the combined check -------------------------------------------------------------------------------


def test_check_text_requires_the_exact_disclosure_and_length_limits() -> None:
    rationale = "Your card ending in 4523 is at 68 % utilization ($3,400 of a $5,000 limit)."
    assert check_text("Utilization", rationale, DISCLOSURE, facts()).passed
    missing = check_text("Utilization", rationale, "Not advice.", facts())
    assert missing.reasons == ["disclosure"]
    too_short = check_text("Utilization", "At 68 %.", DISCLOSURE, facts())
    assert too_short.reasons == ["length"]
    too_long = check_text("Utilization", rationale * 10, DISCLOSURE, facts())
    assert too_long.reasons == ["length"]
    assert check_text("x" * 91, rationale, DISCLOSURE, facts()).reasons == ["length"]


def test_check_text_reports_every_failure() -> None:
    report = check_text("Stop wasting", "You're overspending $9,999 on things you never use.", "", facts())
    assert report.reasons == ["tone", "grounding", "disclosure"]
    as_dict = report.to_dict()
    assert as_dict["passed"] is False
    assert as_dict["grounding"]["unmatched"] == ["$9,999"]


def test_trusted_names_exempt_catalog_titles_from_grounding() -> None:
    rationale = "Your card ending in 4523 is at 68 % utilization, so this 12-month plan may help."
    assert not check_text("A 12-month plan", rationale, DISCLOSURE, facts()).passed
    assert check_text(
        "A 12-month plan",
        rationale.replace("this 12-month plan", "A 12-month plan"),
        DISCLOSURE,
        facts(),
        ("A 12-month plan",),
    ).passed


def test_a_fact_table_checks_the_same_after_travelling_as_citable_facts() -> None:
    """What the operator receives (``citable``) and checks an edit against (``from_citable``)."""
    table = facts()
    received = from_citable(citable(table))
    assert [(f.key, f.unit, f.value, f.display, f.untrusted) for f in received.values()] == [
        (f.key, f.unit, f.value, f.display, f.untrusted) for f in table.values()
    ]
    rationale = "Your Visa 7-Eleven Rewards ending in 4523 is at 68 % utilization ($3,400 of a $5,000 limit)."
    assert check_text("Utilization", rationale, DISCLOSURE, received).passed
    assert not check_text("Utilization", rationale.replace("$3,400", "$3,900"), DISCLOSURE, received).passed


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("about fifty thousand dollars", "usd", 50_000.0),
        ("$fifty", "usd", 50.0),
        ("50 thousand dollars", "usd", 50_000.0),
        ("twelve percent", "percent", 12.0),
        ("twenty-five", "count", 25.0),
        ("three hundred and twelve days", "days", 312.0),
        ("one month", "months", 1.0),
    ],
)
def test_numbers_written_in_words_are_claims(text: str, unit: str, value: float) -> None:
    [claim] = extract_claims(text)
    assert (claim.unit, claim.value) == (unit, value)
    assert not check_grounding(text, facts()).passed


def test_small_number_words_are_language_and_catalog_phrases_are_the_catalogs() -> None:
    assert extract_claims("one of the inputs, two of the biggest") == []
    text = "Build twelve months of savings."
    assert not check_grounding(text, facts()).passed
    assert check_grounding(text, facts(), catalog_text="An article on twelve months of savings.").passed


def test_links_addresses_and_phone_numbers_only_when_the_catalog_item_has_them() -> None:
    rationale = "Your Visa ending in 4523 is at 68 % utilization; see annualcreditreport.com for reports."
    assert check_text("Utilization", rationale, DISCLOSURE, facts()).reasons == ["contacts"]
    own = "Free reports at AnnualCreditReport.com."
    assert check_text("Utilization", rationale, DISCLOSURE, facts(), catalog_text=own).passed
    for lure in ("help@fix.com", "(800) 555-0199", "http://fix.example/now", "fix (dot) com"):
        report = check_text("Utilization", f"{rationale} Or {lure}.", DISCLOSURE, facts(), catalog_text=own)
        assert "contacts" in report.reasons, lure
        assert report.to_dict()["contacts"]["found"], lure
    assert find_contacts("On 2026-10-28 you paid $3,400,000; it is free. Co-pays vary.") == []
