"""What the agent remembers of a conversation: the latest turns that fit a
token budget, and a summary of everything before them. Turns that leave the
budget are handed to the agent to condense (MemoryCondensed comes back),
so older context is kept in short form rather than dropped."""

import math
from dataclasses import dataclass, field

from supportdesk_contracts.events import HistoryTurn
from supportdesk_sessions.state import Memory

CHARS_PER_TOKEN = 4  # the estimate the agent's LLM budget uses too
CONDENSE_BACKLOG = 20
"""Older messages read per turn beyond the window: what the summary can catch up on at once."""


@dataclass(frozen=True)
class Recall:
    history: list[HistoryTurn] = field(default_factory=list)
    summary: str = ""
    condense: list[HistoryTurn] = field(default_factory=list)
    condense_upto: int = 0


def tokens_of(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def recall(memory: Memory, message_id: str, max_turns: int, budget_tokens: int) -> Recall:
    """The newest earlier messages within `max_turns` and `budget_tokens` (the
    latest one always, however long), the summary, and the older messages the
    summary does not cover yet."""
    earlier = [(position, m) for position, m in memory.messages if m["id"] != message_id]
    if max_turns == 0:
        return Recall()
    window: list[tuple[int, dict[str, str]]] = []
    used = 0
    for position, message in reversed(earlier):
        cost = tokens_of(message["content"])
        if len(window) >= max_turns or (window and used + cost > budget_tokens):
            break
        window.append((position, message))
        used += cost
    window.reverse()
    start = window[0][0] if window else math.inf
    older = [(p, m) for p, m in earlier if memory.summary_upto < p < start]
    return Recall(
        history=[HistoryTurn(role=m["role"], content=m["content"]) for _, m in window],
        summary=memory.summary,
        condense=[HistoryTurn(role=m["role"], content=m["content"]) for _, m in older],
        condense_upto=older[-1][0] if older else memory.summary_upto,
    )
