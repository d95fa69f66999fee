"""The guardrails' fast paths find exactly what the plain scans found.

``check_tone``, ``find_contacts`` and ``extract_claims`` scan ASCII text with lowercase twins of their
case-insensitive patterns, skip what a text cannot contain, and remember the texts they saw
(``guardrails.ascii_scan``); ``check_grounding`` reads the fact table once per text. Each is compared
here, over generated texts (unicode that case-folds onto ASCII letters, digits, amounts, dates,
addresses, links, phone numbers, number words, lexicon phrases), with the implementation it replaced,
kept below as ``_reference_...``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spendsense_shared.guardrails import contacts, grounding, tone
from spendsense_shared.guardrails.ascii_scan import CACHED_TEXT_MAX, lowercase_twin
from spendsense_shared.guardrails.facts import Fact, FactTable
from spendsense_shared.guardrails.grounding import Claim, GroundingResult

# -- the replaced implementations, as they were -------------------------------------------------------


def _reference_check_tone(*texts: str) -> tone.ToneResult:
    hits: list[dict[str, str]] = []
    for text in texts:
        normalized = text.translate(tone._NORMALIZE)
        for name, pattern in tone._COMPILED:
            match = pattern.search(normalized)
            if match:
                hits.append({"rule": name, "match": match.group(0)})
    return tone.ToneResult(passed=not hits, hits=hits)


def _reference_find_contacts(text: str) -> list[dict[str, str]]:
    folded = contacts._folded(text)
    found: list[dict[str, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in contacts._PATTERNS:
        for match in pattern.finditer(folded):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            if kind == "phone" and contacts._DATE.fullmatch(match.group(0).strip()):
                continue
            taken.append((start, end))
            found.append({"kind": kind, "text": match.group(0)})
    return found


def _reference_extract_claims(text: str) -> list[Claim]:
    return [c for c in (grounding._claim(m) for m in grounding._CLAIM.finditer(text)) if c is not None]


def _reference_is_catalog_phrase(claim: Claim, catalog_words: frozenset[str]) -> bool:
    match = re.match(grounding._WORDS_RE, claim.text, re.IGNORECASE)
    return match is not None and " ".join(match.group(0).lower().split()) in catalog_words


def _reference_without_names(text: str, facts: FactTable) -> str:
    names = {str(f.value) for f in facts.values() if f.unit == "text"}
    names |= {f.display for f in facts.values() if f.unit == "text"}
    for name in sorted((n for n in names if n), key=len, reverse=True):
        text = text.replace(name, " ")
    return text


def _reference_catalog_words(catalog_text: str) -> frozenset[str]:
    return frozenset(
        " ".join(m.group(0).lower().split())
        for m in re.finditer(grounding._WORDS_RE, catalog_text, re.IGNORECASE)
    )


def _reference_check_grounding(
    text: str, facts: FactTable, names: tuple[str, ...] = (), catalog_text: str = ""
) -> GroundingResult:
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    catalog_words = _reference_catalog_words(catalog_text) if catalog_text else frozenset()
    claims = []
    for claim in _reference_extract_claims(_reference_without_names(text, facts)):
        if catalog_words and _reference_is_catalog_phrase(claim, catalog_words):
            continue
        matched = next((f.key for f in facts.values() if grounding._matches(claim, f)), None)
        claims.append(Claim(claim.text, claim.unit, claim.value, claim.tolerance, matched))
    return GroundingResult(passed=all(c.matched for c in claims), claims=claims)


# -- generated texts -------------------------------------------------------------------------------------

FRAGMENTS = [
    # figures and dates
    *(
        "$3,400",
        "$24.99",
        "$3.4k",
        "$ 50",
        "-$12",
        "3,400 dollars",
        "68 %",
        "68%",
        "68 percent",
        "12 per cent",
    ),
    *(
        "59 days",
        "0.4 months",
        "18-month",
        "2 weeks",
        "3 years",
        "2026-10-28",
        "October 28, 2026",
        "Oct. 28th",
    ),
    *("10/28/2026", "3/4", "13/45/99", "1,234,567", "0.43", "4523", "x4523", "…4523", "***4523", "...4523"),
    *("ending in 4523", "Ending In 12", "last four 4523", "last 4 digits of 9876", "pending in 17"),
    # number words
    *("fifty thousand dollars", "Twenty-Five", "one hundred and twelve", "a thousand", "a million", "two"),
    *(
        "twelve percent",
        "nine days",
        "$fifty",
        "ELEVEN",
        "fourteen-month",
        "one of the inputs",
        "\u017feven",
        "\u017fix",
    ),
    *("zero", "Zero percent", "eighteen", "billion", "a hundred", "one thousand", "ninety-nine", "Thirty"),
    # addresses, links, phone numbers
    *("help@example.com", "name (at) host [dot] com", "name at host dot com", "x [at] y (dot) org"),
    *("http://x.co/a", "HTTPS://Repair.Score", "www.example.com", "WWW[.]bad(.)io", "example[.]com"),
    *("pay.money/now", "foo dot loans", "Co-pays", "is free. Co-pays", "555-0100", "(800) 555-0199"),
    *("name[at]host.com", "NAME (AT) HOST.COM", "bad(.)io", "pay (dot) loans", "shop [dot] store"),
    *(
        "+1 800 555 0199",
        "5550100",
        "1-800-FLOWERS",
        "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
        "\uff48\uff45\uff4c\uff50\uff20\uff58\uff0e\uff43\uff4f\uff4d",
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
    ),
    # tone
    *("You're overspending", "YOU\u2019RE OVERSPENDING", "you\u2019ve failed", "irresponsible", "wasteful"),
    *("bad with money", "Your account is frozen", "URGENT", "act now", "call 555-0100", "legal action"),
    *("out of control", "you must", "your own fault", "splurging", "you can't afford", "wake\u2011up call"),
    *("drowning in debt", "You are broke", "going broke", "asap", "dial +1 800 555 0199", "visit www.x.io"),
    *(
        "\u0399rresponsible",
        "\u0131rresponsible",
        "\u0130rresponsible",
        "reckle\u017fs",
        "\u212aeep",
        "lazy",
        "stup\u0131d",
    ),
    # plain language and odd characters
    *("Utilization", "is one of the inputs", "Your Visa", "7-Eleven", "a", "one", "and", "the", "x", "k"),
    *(
        "\u00a0",
        "\u200b",
        "\u202e",
        "\t",
        "\n",
        "\u00e9",
        "\u00df",
        "\ufb01",
        "\u216b",
        "\u0663",
        "\U0001d7d3",
        "\u00bd",
        "\u00b2",
    ),
]
SEPARATORS = ["", " ", "  ", "\n", "-", ".", ",", ", ", ". ", "(", ")", "$", "@", "/", ":", "*", "…"]

_PIECE = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.sampled_from(SEPARATORS),
    st.text(max_size=6),
    st.text(alphabet="0123456789$.,%-/ kKaAeEnNsStTxX@:", max_size=10),
)
texts = st.one_of(
    st.lists(_PIECE, max_size=24).map("".join),
    # One fragment in a little text: a text with many figures and phrases hides a missed one.
    st.tuples(st.text(max_size=4), st.sampled_from(FRAGMENTS), st.text(max_size=4)).map("".join),
)
cased_texts = st.tuples(texts, st.sampled_from([str, str.upper, str.lower, str.title])).map(
    lambda pair: pair[1](pair[0])
)


def _fact_tables() -> st.SearchStrategy[FactTable]:
    number = st.one_of(
        st.sampled_from([0.0, 4.0, 12.0, 50000.0, 68.0, 3400.0, 3412.55, 0.43, 2026.0]),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    )
    fact = st.one_of(
        st.builds(
            lambda key, unit, value: Fact(key, unit, round(value, 2), str(value), raw=value),
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(["usd", "percent", "days", "months", "count"]),
            number,
        ),
        st.builds(lambda v: Fact("card.mask", "mask", v, v), st.sampled_from(["4523", "12", "9876"])),
        st.builds(lambda v: Fact("due", "date", v, v), st.sampled_from(["2026-10-28", "2026-03-04"])),
        st.builds(
            lambda v: Fact("card.name", "text", v, v, untrusted=True),
            st.sampled_from(["Visa 7-Eleven Rewards", "Discover it", "\u017feven 12", ""]),
        ),
    )
    return st.lists(fact, max_size=6).map(FactTable)


def _outcome(check: Any, *args: Any) -> Any:
    """What a check returns, or the error it raises (the same text must fail the same way)."""
    try:
        return check(*args)
    except Exception as error:  # compared, not handled
        return (type(error), error.args)


FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(first=cased_texts, second=cased_texts)
def test_check_tone_finds_what_the_entry_by_entry_scan_found(first: str, second: str) -> None:
    assert tone.check_tone(first, second) == _reference_check_tone(first, second)
    assert tone.check_tone(first) == _reference_check_tone(first)  # again: from the cache


@FAST
@given(text=cased_texts)
def test_find_contacts_finds_what_every_pattern_found(text: str) -> None:
    assert contacts.find_contacts(text) == _reference_find_contacts(text)
    assert contacts.find_contacts(text) == _reference_find_contacts(text)


@FAST
@given(text=cased_texts)
def test_extract_claims_finds_what_the_case_insensitive_scan_found(text: str) -> None:
    expected = _outcome(_reference_extract_claims, text)
    assert _outcome(grounding.extract_claims, text) == expected
    assert _outcome(grounding.extract_claims, text) == expected


@FAST
@given(
    text=cased_texts,
    facts=_fact_tables(),
    names=st.lists(
        st.sampled_from(["Card payoff planner", "7-Eleven", "12-month CD", "\u017feven"]), max_size=2
    ),
    catalog=st.one_of(st.just(""), cased_texts),
)
def test_check_grounding_decides_as_before(
    text: str, facts: FactTable, names: list[str], catalog: str
) -> None:
    expected = _outcome(_reference_check_grounding, text, facts, tuple(names), catalog)
    assert _outcome(grounding.check_grounding, text, facts, tuple(names), catalog) == expected


WRAPPERS = ["{}", "x{}y", "a {}.", "pending{}", "({})", "{}\n{}", "Utilization is {}, and ", "9{}9"]


def test_every_fragment_alone_and_wrapped_is_read_as_before() -> None:
    """Each fragment on its own (a missed pattern cannot hide behind another one's match)."""
    for fragment in [*FRAGMENTS, *SEPARATORS]:
        for case in (str, str.upper, str.lower, str.title):
            for wrapper in WRAPPERS:
                text = case(wrapper.format(fragment, fragment))
                assert tone.check_tone(text) == _reference_check_tone(text), text
                assert contacts.find_contacts(text) == _reference_find_contacts(text), text
                expected = _outcome(_reference_extract_claims, text)
                assert _outcome(grounding.extract_claims, text) == expected, text


@pytest.mark.parametrize("size", [CACHED_TEXT_MAX, CACHED_TEXT_MAX + 1, 3 * CACHED_TEXT_MAX])
def test_long_texts_are_checked_the_same_without_the_cache(size: int) -> None:
    unit = "You're overspending $3,400 on 2026-10-28, call 555-0100 or help@example.com. "
    text = (unit * (size // len(unit) + 1))[:size]
    assert tone.check_tone(text) == _reference_check_tone(text)
    assert contacts.find_contacts(text) == _reference_find_contacts(text)
    assert grounding.extract_claims(text) == _reference_extract_claims(text)


def test_what_a_check_returns_is_the_callers_own() -> None:
    """The checks remember texts, not results: a caller changing what it got changes nothing later."""
    text = "You're overspending: call 555-0100 about $3,400."
    hits = tone.check_tone(text).hits
    hits[0]["rule"] = "edited"
    hits.clear()
    found = contacts.find_contacts(text)
    found[0]["kind"] = "edited"
    found.clear()
    claims = grounding.extract_claims(text)
    claims.clear()
    assert tone.check_tone(text) == _reference_check_tone(text)
    assert contacts.find_contacts(text) == _reference_find_contacts(text)
    assert grounding.extract_claims(text) == _reference_extract_claims(text)


def test_unicode_that_folds_onto_ascii_letters_is_still_caught() -> None:
    """Under IGNORECASE the long s, the dotless i, the dotted capital I and the Kelvin sign match ASCII
    letters; ``str.lower`` does not map them, so such text takes the case-insensitive patterns."""
    assert not tone.check_tone("reckle\u017fs").passed
    assert not tone.check_tone("\u0131rresponsible").passed
    assert [c.text for c in grounding.extract_claims("\u017f 12 days")] == ["12 days"]
    for text in ("\u017fix percent", "\u017feven thousand", "\u212aeep 12 \u017feven", "\u017f 12 days"):
        assert _outcome(grounding.extract_claims, text) == _outcome(_reference_extract_claims, text)
    # A number word spelled so is read as the word it folds onto (it raised KeyError before).
    [six] = grounding.extract_claims("\u017fix percent")
    assert (six.unit, six.value) == ("percent", 6.0)
    [seven_thousand] = grounding.extract_claims("\u017feven thou\u017fand dollars")
    assert seven_thousand.value == 7000.0


@pytest.mark.parametrize(
    "pattern",
    [re.compile("Visa", re.IGNORECASE), re.compile("a(?-i:b)", re.IGNORECASE), re.compile("ab")],
)
def test_a_lowercase_twin_is_refused_where_it_would_differ(pattern: re.Pattern[str]) -> None:
    with pytest.raises(ValueError, match=r"lowercase_twin is for|uppercase letters or inline flags"):
        lowercase_twin(pattern)


def test_a_lowercase_twin_keeps_escapes_and_group_names() -> None:
    twin = lowercase_twin(re.compile(r"(?P<word>\S+)\s(?P=word)", re.IGNORECASE))
    assert not twin.flags & re.IGNORECASE
    match = twin.search("say hello hello")
    assert match is not None
    assert match.group("word") == "hello"


def _claim_dicts(claims: list[Claim]) -> list[dict[str, Any]]:
    return [c.to_dict() for c in claims]


def test_the_claim_scan_reads_the_examples_of_the_module_docstring() -> None:
    text = "On Oct 28 your Visa ending in 4523 was at 68 % ($3,400 of $5,000) for 59 days, about fifty thousand dollars."
    assert _claim_dicts(grounding.extract_claims(text)) == _claim_dicts(_reference_extract_claims(text))
    assert [c.unit for c in grounding.extract_claims(text)] == [
        "date",
        "mask",
        "percent",
        "usd",
        "usd",
        "days",
        "usd",
    ]
