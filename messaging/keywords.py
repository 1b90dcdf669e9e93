"""The STOP / START / HELP words: the one classifier every inbound path uses (recipients and the relay).

A keyword is the whole message, ignoring case, spacing and punctuation: "Stop!",
"stop." and "opt-out" all opt out; "please stop texting me" is a message, which
is how carriers and the CTIA expect short keywords to be read.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "UNSUB", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
_NOT_A_WORD = re.compile(r"[\W_]+")


def classify(text: str | None) -> Keyword:
    word = _NOT_A_WORD.sub(" ", text or "").strip().upper()
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return Keyword.NONE
