"""Our reference for a request that names several messages: their ids as runs (``101-150.152``).

A multi-destination request carries one status-callback URL for all its messages, so the URL
names the group; each report's destination then picks the message out of it (a group never
holds one destination twice). A single message's reference stays its id: group references
always hold a ``-`` or a ``.``, so the two never collide.
"""

from __future__ import annotations

from collections.abc import Iterable

from providers.status import is_message_ref

# A ProviderEvent's message_ref holds 64 characters; a reference must fit it.
MAX_REF_CHARS = 64
_MAX_MEMBERS = 1000  # a parsed reference never expands to more than this (a run like 1-99999999)


def group_ref(refs: Iterable[str]) -> str:
    """The reference of a group of message ids (order does not matter)."""
    ids = sorted({int(r) for r in refs})
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ".".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in runs)


class RefRuns:
    """A group reference grown one id at a time: its length is known without rebuilding it (ids in
    ascending order, as batches claim them, cost O(1) each; others rebuild it)."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.chars = 0

    def chars_with(self, ref: str) -> int:
        """The reference's length once ``ref`` is added."""
        i = int(ref)
        if not self.runs:
            return len(ref)
        lo, hi = self.runs[-1]
        if i == hi + 1:
            return self.chars - _run_chars(lo, hi) + _run_chars(lo, i)
        if i > hi:
            return self.chars + 1 + len(ref)
        return len(group_ref([*map(str, self._ids()), ref]))

    def add(self, ref: str) -> None:
        i = int(ref)
        if self.runs and i <= self.runs[-1][1]:
            ids = sorted({*self._ids(), i})
            self.runs, self.chars = [], 0
            for j in ids:
                self._append(j)
        else:
            self._append(i)

    def _append(self, i: int) -> None:
        if self.runs and i == self.runs[-1][1] + 1:
            lo, hi = self.runs[-1]
            self.chars += _run_chars(lo, i) - _run_chars(lo, hi)
            self.runs[-1][1] = i
        else:
            self.chars += (1 if self.runs else 0) + len(str(i))
            self.runs.append([i, i])

    def _ids(self) -> list[int]:
        return [i for lo, hi in self.runs for i in range(lo, hi + 1)]


def _run_chars(lo: int, hi: int) -> int:
    return len(str(lo)) if lo == hi else len(str(lo)) + 1 + len(str(hi))


def group_members(ref: str) -> list[str] | None:
    """The message ids a group reference names; None when ``ref`` is not one."""
    if len(ref) > MAX_REF_CHARS or not ("-" in ref or "." in ref):
        return None
    members: list[str] = []
    for run in ref.split("."):
        first, _, last = run.partition("-")
        if not is_message_ref(first) or (last and not is_message_ref(last)):
            return None
        lo, hi = int(first), int(last or first)
        if hi < lo or len(members) + hi - lo + 1 > _MAX_MEMBERS:
            return None
        members.extend(str(i) for i in range(lo, hi + 1))
    return members if len(members) > 1 else None
