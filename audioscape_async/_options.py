"""Per-call options: what one call may change of its client's config, and its deadline.

Every public method takes ``timeout=`` (one attempt), ``max_retries=`` /
``retry=``, ``extra_headers=`` and ``deadline=`` (seconds for the whole call:
attempts, backoff and rate-limit waits together). `call_options` merges them
over the client's config once per call; a call that overrides nothing gets
the client's precomputed defaults and pays nothing.

A deadline is turned into an instant (`CallOptions.deadline_at`, on the
monotonic clock) when the call starts; a walk starts its clock once, so its
deadline covers every page. Each stage that waits asks `wait_fits` first: a
wait that cannot end before the deadline fails at once, rather than sleeping
to find out.
"""

from __future__ import annotations

import time

import attrs
import httpx

from ._config import (
    ClientConfig,
    SecretHeaders,
    attempt_bound,
    check_deadline,
    check_extra_headers,
    resolve_retry,
    resolve_timeout,
)
from ._exceptions import DeadlineExceededError
from ._retry import RetryPolicy

__all__ = ["NOT_GIVEN", "CallOptions", "NotGiven", "call_options", "deadline_error"]


class NotGiven:
    """The type of `NOT_GIVEN`: an argument left out (None means "no limit" for a timeout)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


@attrs.frozen
class CallOptions:
    """The settled options of one call."""

    headers: httpx.Headers = attrs.field(repr=False)  # they carry the key
    extensions: dict[str, object]  # httpx's request extensions: the per-step timeouts
    bound: float | None  # the most one attempt may take in all
    retry: RetryPolicy
    deadline: float | None = None  # seconds for the whole call
    deadline_at: float | None = None  # when it runs out, once the call has started
    walk: bool = False  # a page of a walk or crawl: 429s do not spend max_retries (`_retry`)

    @classmethod
    def defaults(cls, config: ClientConfig) -> CallOptions:
        """The options of a call that overrides nothing."""
        return cls(
            headers=config.headers,
            extensions={"timeout": config.timeout.as_dict()},
            bound=config.bound,
            retry=config.retry,
        )

    def started(self) -> CallOptions:
        """These options with the deadline's clock running (once: a walk keeps its instant)."""
        if self.deadline is None or self.deadline_at is not None:
            return self
        return attrs.evolve(self, deadline_at=time.monotonic() + self.deadline)

    def walking(self) -> CallOptions:
        """These options for a walk's pages: started, and patient with 429s (`RetryPolicy`)."""
        return attrs.evolve(self.started(), walk=True)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        if self.deadline_at is None:
            return None
        return self.deadline_at - time.monotonic()

    def attempt_bound(self) -> tuple[float | None, bool]:
        """The most the next attempt may take, and whether the deadline is what sets it."""
        left = self.remaining()
        if left is None or (self.bound is not None and self.bound <= left):
            return self.bound, False
        if left <= 0:
            raise self.deadline_error("before the next attempt")
        return left, True

    def wait_fits(self, seconds: float, what: str) -> None:
        """Raise the deadline's error now if a wait of `seconds` would end past it."""
        left = self.remaining()
        if left is not None and seconds > left:
            raise self.deadline_error(
                f"{what} would wait {seconds:.2f} s, {max(left, 0):.2f} s left"
            )

    def deadline_error(self, detail: str) -> DeadlineExceededError:
        """The error of a call whose deadline has run out."""
        return deadline_error(detail, self.deadline)


def deadline_error(detail: str, seconds: float | None = None) -> DeadlineExceededError:
    """The error of a call whose deadline (of `seconds`, if the stage knows them) has run out."""
    of = f" of {seconds:g} s" if seconds is not None else ""
    return DeadlineExceededError(f"the call's deadline{of} was reached ({detail})")


def call_options(
    config: ClientConfig,
    defaults: CallOptions,
    *,
    timeout: object = NOT_GIVEN,
    max_retries: object = None,
    retry: object = None,
    extra_headers: object = None,
    deadline: object = None,
) -> CallOptions:
    """Merge one call's overrides over the client's config; check each as the constructor does."""
    if (
        timeout is NOT_GIVEN
        and max_retries is None
        and retry is None
        and extra_headers is None
        and deadline is None
    ):
        return defaults
    # Every check before the headers (which carry the key) are copied: an error
    # raised after would keep them in this frame's locals.
    checked_deadline = check_deadline(deadline)
    resolved = resolve_timeout(timeout) if timeout is not NOT_GIVEN else None
    policy = (
        resolve_retry(max_retries, retry, config.retry)
        if max_retries is not None or retry is not None
        else None
    )
    extra = check_extra_headers("extra_headers", extra_headers)
    options = defaults
    if resolved is not None:
        options = attrs.evolve(
            options, extensions=_extensions(defaults, resolved), bound=attempt_bound(resolved)
        )
    if policy is not None:
        options = attrs.evolve(options, retry=policy)
    if checked_deadline is not None:
        options = attrs.evolve(options, deadline=checked_deadline)
    if extra:
        headers = SecretHeaders(config.headers)
        headers.update(extra)
        options = attrs.evolve(options, headers=headers)
    return options


def _extensions(defaults: CallOptions, timeout: httpx.Timeout) -> dict[str, object]:
    """The defaults' request extensions with another timeout (the size limit stays)."""
    return {**defaults.extensions, "timeout": timeout.as_dict()}
