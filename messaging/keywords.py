"""The STOP / START / HELP words: the one classifier every inbound path uses (recipients and the relay).

Two tiers (docs/recipients.md, "What counts as STOP"):

1. **Keywords.** A keyword is the whole message, ignoring case, spacing and
   punctuation: "Stop!", "stop." and "Opt-Out" all opt out. The opt-out words
   are CTIA's (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) plus FCC 24-18's
   "revoke" and "opt out", and a few unambiguous spellings ("optout",
   "unsub", "stop all", "unsubscribe me").
2. **Opt-out requests.** FCC 24-18 lets people revoke consent "by any
   reasonable means", so a message that is not a keyword but clearly asks us
   to stop ("please stop texting me", "remove me", "take me off your list",
   "don't text me") is :attr:`Keyword.OPT_OUT_REQUEST`. Callers treat it as an
   opt-out and record that it was a phrase, not a keyword. The phrase list is
   small and conservative: "stop by the store tomorrow?" or "don't remove me"
   are ordinary messages.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    #: Not a keyword, but a message that clearly asks us to stop (an opt-out by "reasonable means").
    OPT_OUT_REQUEST = "opt_out_request"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


OPT_OUT_WORDS = frozenset(
    {
        "STOP",
        "STOPALL",
        "STOP ALL",
        "UNSUBSCRIBE",
        "UNSUBSCRIBE ME",
        "UNSUB",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "OPT OUT",
    }
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
_NOT_A_WORD = re.compile(r"[\W_]+")

# Tier 2, matched on the normalised text (lower case, apostrophes dropped, anything else
# that is not a letter or digit a single space). A negation right before a phrase
# ("don't remove me", "never stop texting me") cancels it.
_CONTACT = r"(?:text|txt|texting|txting|message|messaging|msg|sms|sending|send|contacting|contact|spamming|spam)"
_US = r"(?:your|the|this|ur)"
_LIST = r"(?:list|lists|mailing list|texting list|text list|sms list|database|contact list|contacts)"
_OPT_OUT_PHRASES = [
    rf"stop {_CONTACT} (?:me|this number|my number|us)",
    rf"stop {_CONTACT} (?:me )?(?:texts|messages|msgs|these|this)",
    rf"(?:dont|do not|don t) {_CONTACT} (?:me|this number|my number)",
    r"no more (?:texts|text messages|messages|msgs)",
    r"remove me",
    r"remove (?:my|this) (?:number|phone)",
    rf"take (?:me|my number|this number) off(?: of)? {_US} {_LIST}",
    r"opt me out",
    r"unsubscribe me",
]
# Only as the whole message: "please stop" is a request, "please stop by the store" is not.
_WHOLE_MESSAGE_PHRASES = [
    r"(?:please )?stop (?:it )?please",
    r"please stop(?: it)?",
    rf"stop {_CONTACT}",
    r"take me off",
    r"(?:please )?leave me alone",
]
_NEGATED = r"(?<!\bdont )(?<!\bdo not )(?<!\bnever )(?<!\bnot )"
_OPT_OUT_REQUEST = re.compile(
    rf"^(?:{'|'.join(_WHOLE_MESSAGE_PHRASES)})$|\b{_NEGATED}(?:{'|'.join(_OPT_OUT_PHRASES)})\b"
)
_APOSTROPHES = re.compile(r"['\u2019\u2018`]")


def _normalise_phrase(text: str) -> str:
    text = _APOSTROPHES.sub("", text.lower())
    return _NOT_A_WORD.sub(" ", text).strip()


def classify(text: str | None) -> Keyword:
    """Tier 1 (a keyword, the whole message) first, then tier 2 (an opt-out request phrase)."""
    word = _NOT_A_WORD.sub(" ", text or "").strip().upper()
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    if is_opt_out_request(text):
        return Keyword.OPT_OUT_REQUEST
    return Keyword.NONE


def is_opt_out_request(text: str | None) -> bool:
    """True when ``text`` (not itself a keyword) clearly asks us to stop texting."""
    return bool(_OPT_OUT_REQUEST.search(_normalise_phrase(text or "")))


def opts_out(text: str | None) -> bool:
    """True for an opt-out keyword or an opt-out request phrase: what every inbound path acts on."""
    return classify(text) in {Keyword.OPT_OUT, Keyword.OPT_OUT_REQUEST}
