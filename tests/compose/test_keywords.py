"""The one STOP / START / HELP classifier (messaging.keywords), no database.

Tier 1: keywords (CTIA's list and FCC 24-18's "revoke" and "opt out"), the whole
message, any case, spacing or punctuation. Tier 2: a message that clearly asks us
to stop ("revocation by any reasonable means"), from a small, conservative list.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from messaging.keywords import Keyword, classify, is_opt_out_request, opts_out

CTIA_AND_FCC = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT"]


def _variants(word: str) -> list[str]:
    return [
        word,
        word.lower(),
        word.title(),
        f"  {word}  ",
        f"\n{word}\n",
        f"{word}.",
        f"{word}!!",
        f"{word.lower()}?",
        f'"{word}"',
        f"\t{word.lower()} !",
    ]


@pytest.mark.parametrize("text", [v for word in CTIA_AND_FCC for v in _variants(word)])
def test_every_ctia_and_fcc_keyword_in_any_case_punctuation_and_spacing_opts_out(text):
    assert classify(text) == Keyword.OPT_OUT
    assert opts_out(text)


@pytest.mark.parametrize(
    "text",
    [
        "Stop.",
        "stop!!",
        "opt out",
        "Opt-Out",
        "OPT-OUT",
        "opt_out",
        "optout",
        "Opt out.",
        "unsubscribe me",
        "Unsubscribe me!",
        "UNSUB",
        "stop all",
        "Stop 🛑",
        "S T O P".replace(" ", ""),
    ],
)
def test_the_issue_s_spellings_are_keywords(text):
    assert classify(text) == Keyword.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "Please stop texting me",
        "PLEASE STOP TEXTING ME!!!",
        "stop texting me",
        "Stop messaging me.",
        "stop sending me these messages",
        "Stop sending me texts",
        "remove me",
        "Remove me from this list please",
        "can you remove me",
        "remove my number",
        "take me off your list",
        "Take me off the list please",
        "take my number off your list",
        "don't text me",
        "Don\u2019t text me anymore",
        "do not contact me",
        "dont message me again",
        "no more texts",
        "opt me out",
        "Please stop",
        "stop please",
        "stop texting",
        "take me off",
        "leave me alone",
        "Wrong number, please stop texting me",
    ],
)
def test_a_clear_request_to_stop_is_an_opt_out_request(text):
    assert classify(text) == Keyword.OPT_OUT_REQUEST
    assert is_opt_out_request(text) and opts_out(text)


@pytest.mark.parametrize(
    "text",
    [
        "stop by the store tomorrow?",
        "Please stop by the store tomorrow",
        "Can I stop by later?",
        "I will stop in on Friday",
        "don't remove me",
        "Please don't remove me from the list!",
        "never stop texting me lol",
        "do not stop texting me",
        "I removed melons from the order",
        "remember me?",
        "take me off at the station",
        "when is the sale?",
        "yes please",
        "STOP IT",
        "the bus stop",
        "non-stop deals",
        "",
        None,
    ],
)
def test_ordinary_messages_are_not_opt_outs(text):
    assert classify(text) == Keyword.NONE
    assert not opts_out(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("START", Keyword.OPT_IN), ("unstop", Keyword.OPT_IN), ("Yes!", Keyword.OPT_IN), ("help?", Keyword.HELP)],
)
def test_start_and_help_are_unchanged(text, kind):
    assert classify(text) == kind
    assert not opts_out(text)
