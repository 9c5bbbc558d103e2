"""A per-session budget of LLM tokens: one anonymous visitor must not be able
to run up the operator's LLM bill. Past the budget the session is answered
extractively (from the passages, no LLM) until the period turns over.

Counted in Redis (a fixed window per session), so every agent replica sees
the same total. Tokens are estimated from characters (about four per token
for English): the prompt (question, history, passages) plus the answer. The
estimate errs high, which is the safe side for a cost cap."""

import logging
import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from supportdesk_contracts.events import HistoryTurn
from supportdesk_knowledge.index import Hit

log = logging.getLogger(__name__)
CHARS_PER_TOKEN = 4


def estimated_tokens(question: str, history: list[HistoryTurn], hits: list[Hit], answer: str) -> int:
    chars = len(question) + sum(len(t.content) for t in history) + sum(len(h.text) for h in hits) + len(answer)
    return math.ceil(chars / CHARS_PER_TOKEN)


class LlmBudget:
    def __init__(self, redis: Redis, prefix: str, tokens: int, period_seconds: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.tokens = tokens
        self.period = period_seconds

    def _key(self, session_id: str) -> str:
        window = int(time.time() // self.period)
        return f"{self.prefix}:llm:{{{session_id}}}:{window}"

    async def exhausted(self, session_id: str) -> bool:
        try:
            spent = await self.redis.get(self._key(session_id))
        except RedisError:
            # The cap protects a bill, not availability: answer as usual.
            log.warning("LLM budget store unavailable; not enforcing it")
            return False
        return spent is not None and int(spent) >= self.tokens

    async def charge(self, session_id: str, tokens: int) -> None:
        key = self._key(session_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, tokens)
                pipe.expire(key, math.ceil(self.period) + 60)
                await pipe.execute()
        except RedisError:
            log.warning("LLM budget store unavailable; usage not counted")
