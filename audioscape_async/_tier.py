"""`TierFinder`: an API key's rate limit learned from the server's 429s alone.

A key's tier is a token bucket on the server: it answers `rate` requests a
second (after a `burst`) and a 429 to the rest. While a client sends faster
than that, its successes come back at exactly the tier, so the rate of the
successes of the last `WINDOW` seconds, measured when a 429 arrives, is the tier
(or a little above it, while a burst is being spent). On each such 429 the
finder sets its rate just under that measure (`BETA`), then probes upward
along a cubic, as TCP CUBIC and botocore's adaptive retry mode do: flat near
the rate that last drew a 429, faster the longer none comes. A 429 to a
request that took its turn at the gate before the last cut says nothing new
(it went out at the old rate) and changes nothing, so one overshoot cuts the
rate once; the gate gives the requests still waiting new turns at the new
rate (`_gate.Gate.throttled`).

At a steady tier the rate spends most of its time between 0.97 and 1.0 of
it; a probe past the tier draws a 429 only once the server's bucket, filled
while the client ran under the tier, is empty. A 429's ``Retry-After`` is
the gate's pause (`_gate`), not a measure of the rate.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["TierFinder"]

#: Seconds of successes (and sends) that make a measure.
WINDOW = 2.0
#: Seconds of one bucket of that window, where it is kept in Redis (`_redis`).
BUCKET = 0.1
#: The rate after a 429, as a share of the measured tier.
BETA = 0.97
#: The cubic's steepness, in shares of the measured tier per second cubed: it
#: is back at the tier ``((1 - BETA) / CUBIC) ** (1/3)`` (6.7) seconds after a cut,
#: and 1% past it 4.6 seconds later.
CUBIC = 0.0001
#: Seconds of probing (at or over the last ceiling) that make a measure.
SETTLED = 1.0
#: Successes in the window that make a measure, when there was no probing.
MIN_SAMPLES = 5
#: Seconds from a cut back to the ceiling: the cubic's flat point.
PLATEAU = ((1.0 - BETA) / CUBIC) ** (1 / 3)
#: The lowest rate it goes down to (requests per second), when nothing succeeds.
FLOOR = 0.5


class TierFinder:
    """The rate of one API key's requests, learned from its 429s; see the module docstring."""

    __slots__ = (
        "_ceiling",
        "_cut_at",
        "_known",
        "_last_sent",
        "_plateau_in",
        "_probed",
        "_recent",
        "_sends",
        "_successes",
    )

    def __init__(self) -> None:
        self._ceiling = math.inf  # the measured tier at the last cut (inf: no 429 yet)
        self._known = 0.0  # the tier as a steady probe last measured it (0: not yet)
        self._cut_at = -math.inf  # when the rate was last cut (monotonic)
        self._plateau_in = 0.0  # seconds from a cut back to the ceiling
        self._probed = 0  # successes since the rate came back to the ceiling
        self._recent = 0  # successes since the last cut
        self._last_sent = -math.inf
        self._sends: deque[float] = deque()
        self._successes: deque[float] = deque()

    @property
    def ceiling(self) -> float:
        """The tier measured at the last 429 (requests per second; inf before any)."""
        return self._ceiling

    def rate(self, now: float) -> float:
        """The rate to send at now (requests per second; inf until the first 429)."""
        if self._ceiling == math.inf:
            return math.inf
        since = now - self._cut_at
        t = since - self._plateau_in
        cubic = self._ceiling * (1.0 + CUBIC * t * t * t)
        fast = self._fast()
        return cubic if fast is None else max(cubic, fast)

    def _fast(self) -> float | None:
        """Under the tier a steady probe measured (after the server refused everything a
        while), the rate climbs back fast: one request a second more for each success
        since the cut, about doubling each second as TCP's slow start does, up to just
        under that tier. None: not under it."""
        if self._known <= self._ceiling:
            return None
        return min(BETA * self._known, self._ceiling + self._recent)

    def sent(self, now: float) -> None:
        """Note a request going out now."""
        gap = now - self._last_sent
        if self._ceiling < math.inf and gap > WINDOW and gap * self.rate(now) > 2:
            # Idle (or paced by something else) a while: time sent at nothing is
            # no probe. Start again from the ceiling, flat, as after a cut.
            self._cut_at = now - self._plateau_in
            self._probed = 0
        self._last_sent = now
        _keep(self._sends, now)

    def succeeded(self, now: float) -> None:
        """Note a request that succeeded."""
        _keep(self._successes, now)
        self._recent += 1
        if now >= self._cut_at + self._plateau_in:
            self._probed += 1

    @property
    def cut_at(self) -> float:
        """When the rate was last cut (monotonic; -inf: never)."""
        return self._cut_at

    def throttled(self, asked_at: float, now: float) -> bool:
        """Note a 429 to a request that asked for its turn at `asked_at`; return whether
        it cut the rate."""
        if asked_at < self._cut_at:
            return False  # its turn came at the rate already cut: nothing new
        sending = self.rate(now)
        fast = self._fast()
        slow_start = fast is not None and fast > self._ceiling
        successes = _count(self._successes, now)
        span = now - self._successes[0] if successes else 0.0
        probing = now - self._cut_at - self._plateau_in
        known = self._known
        if SETTLED <= probing < math.inf and self._probed:
            # Since the rate came back to the last ceiling it ran at or over it, up to
            # this 429: what got through meanwhile is the tier's worth, the server's
            # bucket and all (a little more, which BETA takes back).
            measured = known = self._probed / probing
        elif successes >= MIN_SAMPLES and span > 0:
            # Over the tier, successes come back at the tier: their rate is the measure.
            measured = (successes - 1) / span
            if slow_start:
                # Back to the old tier failed: it is no longer the tier.
                known = min(measured, sending)
        elif now - self._cut_at < WINDOW:
            return False  # nothing gets through: one cut a window, not one a request
        else:
            # Too few got through to measure: half of what was sent, or of the rate.
            sends = _count(self._sends, now)
            span = now - self._sends[0] if sends else 0.0
            measured = ((sends - 1) / span if sends >= 2 and span > 0 else sending) / 2
            if measured == math.inf:
                measured = 2 * FLOOR  # the very first request refused: a careful start
        # A cut at most halves the rate a probe had reached.
        floor = sending / 2 if sending < math.inf and known else FLOOR
        self._ceiling = max(FLOOR, floor, min(measured, sending))
        self._known = known
        self._cut_at = now
        self._probed = self._recent = 0
        self._plateau_in = PLATEAU
        return True


def _keep(times: deque[float], now: float) -> None:
    times.append(now)
    _count(times, now)


def _count(times: deque[float], now: float) -> int:
    """How many of `times` lie in the last `WINDOW` seconds (older ones are dropped)."""
    horizon = now - WINDOW
    while times and times[0] < horizon:
        times.popleft()
    return len(times)
