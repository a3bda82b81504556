"""`_tier`: a rate learned from 429s alone settles just under a token-bucket tier.

The client is simulated on a clock of its own against a server that keeps a
tier as the emulator does (a token bucket of `rate` and `burst`, a 429 with
no Retry-After to a request that finds no token): requests go out paced by
the finder, as the gate paces them, and come back after a round trip. The
targets are those of the crawl benchmark (`benchmarks/tier.py`), measured
the same way: at least 95% of the possible successes (burst + rate x time),
and 429s at most 2% of the requests sent after the first 10 seconds.
"""

from __future__ import annotations

import heapq
import itertools
import math

import attrs
import pytest

from audioscape_async._gate import NAP
from audioscape_async._tier import BETA, FLOOR, TierFinder


@attrs.define
class Bucket:
    """The server's tier: `rate` tokens a second, at most `burst`."""

    rate: float
    burst: int
    tokens: float = 0.0
    at: float = 0.0

    def __attrs_post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


ASK, SEND, OK, THROTTLED = range(4)


@attrs.define
class Run:
    sent: list[float] = attrs.Factory(list)
    throttled: list[float] = attrs.Factory(list)
    succeeded: list[float] = attrs.Factory(list)


def simulate(
    bucket: Bucket,
    *,
    seconds: float,
    rtt: float = 0.02,
    concurrency: int = 16,
    blackout: tuple[float, float] = (0.0, 0.0),
    finder: TierFinder | None = None,
) -> Run:
    """A crawl of endless pages at `concurrency`, paced by a `TierFinder` as `Gate` paces.

    Events, in time order: a slot asks for its turn (ASK: one interval of the rate now
    after the last turn given, or a nap of NAP and ask again if further off), its
    request goes out at that turn (SEND; a turn given before a cut is asked for again),
    and its answer comes back a round trip later (OK or THROTTLED), when the slot asks
    again at once (a 429 is retried with no backoff: the gate paces it). During
    `blackout` (start, end) the server refuses everything.
    """
    finder = finder or TierFinder()
    run = Run()
    events: list[tuple[float, int, float]] = [(0.0, ASK, 0.0)] * concurrency
    last = -math.inf  # the last turn given
    while events:
        now, kind, asked_at = heapq.heappop(events)
        if now > seconds:
            break
        if kind == ASK:
            turn = max(last + 1.0 / finder.rate(now), now)
            if turn - now > NAP:
                heapq.heappush(events, (now + NAP, ASK, asked_at))
                continue
            last = turn
            heapq.heappush(events, (turn, SEND, now))  # the turn is given now
        elif kind == SEND:
            if finder.cut_at > asked_at:
                heapq.heappush(events, (now, ASK, now))
                continue
            finder.sent(now)
            run.sent.append(now)
            refused = blackout[0] <= now < blackout[1]
            answer = OK if bucket.take(now + rtt / 2) and not refused else THROTTLED
            heapq.heappush(events, (now + rtt, answer, asked_at))
        elif kind == OK:
            finder.succeeded(now)
            run.succeeded.append(now)
            heapq.heappush(events, (now, ASK, now))
        else:
            run.throttled.append(now)
            if finder.throttled(asked_at, now):
                last = now
            heapq.heappush(events, (now, ASK, now))
    return run


@pytest.mark.parametrize(("rate", "burst"), [(10, 10), (50, 50), (50, 10)])
@pytest.mark.parametrize("concurrency", [4, 16, 64])
def test_a_learned_rate_finds_the_tier(rate: float, burst: int, concurrency: int) -> None:
    """From nothing, within 10 s: 95% of what the tier allows, and 429s under 2% after that.

    The tiers of the benchmark. A tier of a request or two a second, or with a
    burst of 1, is learned more slowly (see the module `_tier`).
    """
    seconds = 60.0
    run = simulate(Bucket(rate, burst), seconds=seconds, concurrency=concurrency)
    possible = burst + rate * (run.succeeded[-1] - run.sent[0])
    assert len(run.succeeded) >= 0.95 * possible
    late_sent = [t for t in run.sent if t > 10.0]
    late_429 = [t for t in run.throttled if t > 10.0 + 0.02]
    assert len(late_429) <= 0.02 * len(late_sent)


def test_no_429_no_limit() -> None:
    """Before its first 429 the finder does not hold anything back."""
    finder = TierFinder()
    for n in range(1000):
        finder.sent(n / 1000)
        finder.succeeded(n / 1000 + 0.01)
    assert finder.rate(1.0) == math.inf
    assert finder.ceiling == math.inf


def test_a_429_sets_the_rate_just_under_the_measured_successes() -> None:
    """Successes at 20 a second, then a 429: the rate is BETA x 20, flat near there at first."""
    finder = TierFinder()
    for n in range(60):
        finder.sent(n / 20)
        finder.succeeded(n / 20)
    assert finder.throttled(asked_at=2.9, now=3.0)
    assert finder.ceiling == pytest.approx(20, rel=0.03)
    assert finder.rate(3.0) == pytest.approx(BETA * finder.ceiling)
    assert finder.rate(4.0) < finder.ceiling  # probes back slowly
    assert finder.rate(30.0) > finder.ceiling  # and faster the longer no 429 comes


def test_a_429_to_a_turn_given_before_the_cut_changes_nothing() -> None:
    """Requests that went out at the old rate answer 429 too: one overshoot, one cut."""
    finder = TierFinder()
    for n in range(60):
        finder.succeeded(n / 20)
    assert finder.throttled(asked_at=2.9, now=3.0)
    rate = finder.rate(3.0)
    assert not finder.throttled(asked_at=2.95, now=3.01)
    assert finder.rate(3.0) == rate
    assert finder.cut_at == 3.0


def test_when_nothing_gets_through_the_rate_halves_down_to_a_floor() -> None:
    """A spent quota: no success at all; each new 429 halves what was sent, never below FLOOR."""
    finder = TierFinder()
    for n in range(40):
        finder.sent(n / 20)
    assert finder.throttled(asked_at=1.9, now=2.0)
    assert finder.ceiling == pytest.approx(10, rel=0.05)
    now = 2.0
    ceilings = [finder.ceiling]
    while now < 600 and finder.ceiling > FLOOR:
        now += 1 / finder.rate(now)  # paced at the rate, as the gate paces
        finder.sent(now)
        if finder.throttled(asked_at=now, now=now + 0.01):
            ceilings.append(finder.ceiling)
    assert finder.ceiling == FLOOR
    assert all(later < earlier for earlier, later in itertools.pairwise(ceilings))


@pytest.mark.parametrize("concurrency", [4, 16, 64])
@pytest.mark.parametrize("dark", [5.0, 20.0])
def test_after_the_server_refused_everything_a_while_the_rate_comes_back_fast(
    concurrency: int, dark: float
) -> None:
    """A 50/s tier that refuses everything for `dark` seconds mid-crawl: the rate does not
    collapse for good; from 10 s after, 90% of the tier gets through again."""
    start = 30.0
    end = start + dark
    run = simulate(
        Bucket(50, 50), seconds=end + 20.0, concurrency=concurrency, blackout=(start, end)
    )
    back = [t for t in run.succeeded if end + 10.0 <= t < end + 20.0]
    assert len(back) >= 0.9 * 50 * 10
    during = [t for t in run.sent if start + 3.0 <= t < end]
    assert len(during) <= 3 * dark  # refused: it asks ever more rarely


def test_an_idle_spell_is_no_probe() -> None:
    """A crawl, ten idle minutes, another crawl: the second starts at the tier it knew."""
    finder = TierFinder()
    simulate(Bucket(50, 50), seconds=40.0, finder=finder)
    known = finder.ceiling
    idle = 600.0
    finder.sent(40.0 + idle)
    assert finder.rate(40.0 + idle) == pytest.approx(known, rel=0.01)
