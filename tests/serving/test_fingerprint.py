"""`_fingerprint`: the owner of every shared thing, keyed by a secret, never the API key itself.

The fingerprint is documented as ``HMAC-SHA256(secret, base_url + NUL + api_key)``,
as 32 hex digits, so that every process of a fleet (and every version of the SDK)
computes the same one; `check_secret` is how a fleet's own secret is read.
How the owners keep answers apart in a cache, in Redis and at the gate is
`test_owners.py`.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from audioscape_async import InvalidParameterError
from audioscape_async._fingerprint import DEFAULT_KEY_SECRET, check_secret, fingerprint

VALID = "sk-valid-0123456789"
REVOKED = "sk-revoked-0123456789"


def test_the_fingerprint_is_keyed_and_never_the_key() -> None:
    """Different keys, URLs or secrets give different fingerprints; none contains the key."""
    base = "http://api.test/developer/v1"
    one = fingerprint(base, VALID)
    assert one == fingerprint(base, VALID, DEFAULT_KEY_SECRET)  # stable: a fleet agrees
    assert len(one) == 32
    assert VALID not in one
    assert one != fingerprint(base, REVOKED)
    assert one != fingerprint("http://other.test/developer/v1", VALID)
    assert one != fingerprint(base, VALID, b"our own secret")


def test_the_fingerprint_is_the_documented_hmac() -> None:
    """HMAC-SHA256 of base_url, NUL, api_key under the secret, its first 32 hex digits."""
    base, secret = "https://api.audioscape.ai/developer/v1", b"fleet secret"
    expected = hmac.new(secret, f"{base}\0{VALID}".encode(), hashlib.sha256).hexdigest()[:32]
    assert fingerprint(base, VALID, secret) == expected


def test_the_default_secret_gives_the_same_fingerprint_in_every_version() -> None:
    """Pinned: a change would split a fleet running two versions (their Redis entries, their
    shared rate limit and pause) without a word."""
    assert DEFAULT_KEY_SECRET == b"audioscape-async/fingerprint/v1"
    assert (
        fingerprint("https://api.audioscape.ai/developer/v1", "sk-live-0123456789")
        == "a9ab22978e131d7a51c84a2e7bb25f84"
    )


def test_url_and_key_cannot_trade_characters() -> None:
    """The NUL between them: ("http://a", "bc") and ("http://ab", "c") are two owners."""
    assert fingerprint("http://a", "bc") != fingerprint("http://ab", "c")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("fleet-a", b"fleet-a"), (b"fleet-a", b"fleet-a"), ("é", "é".encode())],
    ids=["str", "bytes", "non-ascii"],
)
def test_a_secret_is_text_or_bytes(value: object, expected: bytes) -> None:
    """Text is its UTF-8 bytes, so "fleet-a" and b"fleet-a" are the same secret."""
    assert check_secret("key_secret", value) == expected


@pytest.mark.parametrize("value", ["", b"", None, 7, bytearray(b"x"), ["x"]], ids=repr)
def test_an_empty_or_other_secret_is_refused_by_name(value: object) -> None:
    """An empty secret would be no secret; anything but str or bytes is a mistake."""
    with pytest.raises(InvalidParameterError, match="must be a non-empty str or bytes") as caught:
        check_secret("backend.key_secret", value)
    assert caught.value.parameter == "backend.key_secret"
