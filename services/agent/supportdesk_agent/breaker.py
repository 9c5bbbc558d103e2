"""A circuit breaker for the LLM endpoint. While it is down, every turn used
to wait the whole timeout before falling back, and a backlog of turns grew to
minutes. After `threshold` failures in a row the breaker opens: turns are
answered from the passages at once, without calling. After `cooldown_seconds`
one turn probes the endpoint (half-open); success closes the breaker, failure
opens it for another cool-down."""

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown_seconds
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether to call the endpoint now. Half-open lets one call through
        (the probe) until it reports back."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def abandoned(self) -> None:
        """The call ended without an outcome (the turn was cancelled): a
        probe that never reported back must not keep the breaker open."""
        self.probing = False

    def failed(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = self.clock(), False
