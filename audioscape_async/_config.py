"""The client's configuration: every argument checked once, frozen, shared by every call.

`ClientConfig.build` turns the constructor's arguments (and the environment)
into one frozen value: the URL with any userinfo taken out of it, the headers
with the key, the timeout and its total bound, the retry policy, the answer
limits. Nothing here does I/O; a call reads the config and never re-checks it.
`with_options` builds another config from this one with `evolve`, which is
why every check lives in a function of its own. The environment's proxy for
the base URL is read here, once (`_transport._proxy`), and that one answer
both routes the requests and decides the insecure-URL warning.

That warning (`InsecureURL`) is decided here but said only once an answer has
come over a real network socket: an in-process transport (httpx's ASGI or mock
transport, the emulator's `http://emulator` example) sends nothing anywhere,
so it never warns. It names the line that made the client.

The secrets (the API key, a password in the base URL) live only in `headers`
(a `SecretHeaders`, whose repr masks them) and in fields attrs never shows:
`repr(config)`, `display_url`, and what rich's `show_locals` prints of a
config are safe to print.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import sys
import warnings
from collections.abc import Mapping

import attrs
import httpx

from ._constants import (
    API_KEY_ENV,
    API_KEY_HEADER,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RESPONSE_BYTES,
    JSON_CONTENT_TYPE,
    SEARCH_PATH,
)
from ._exceptions import AudioScapeError, InvalidParameterError
from ._retry import RetryPolicy
from ._transport._proxy import Proxy, environment_proxy
from ._validation import check_headers, check_int_range, check_optional, check_seconds
from ._version import __version__

__all__ = ["ClientConfig", "InsecureURLWarning", "SecretHeaders", "TimeoutTypes", "redact_url"]

#: What a `timeout` argument may be.
TimeoutTypes = float | httpx.Timeout | None

USER_AGENT = (
    f"audioscape-async/{__version__} httpx/{httpx.__version__} "
    f"{sys.implementation.name}/{'.'.join(map(str, sys.version_info[:3]))}"
)

#: What the SDK can decode itself, within its limits (see `_transport`).
ACCEPT_ENCODING = "gzip, deflate"


class InsecureURLWarning(UserWarning):
    """The key travels in clear: plain http to a host off this machine, or through a proxy.

    Warned once per client, at its first answer that came over a network socket.
    """


class InsecureURL:
    """A plain-http base URL's warning, held until an answer comes over a network socket.

    Made with the config, where it remembers the user's line (the first frame
    outside the SDK); `warn()` says it once, with that line, however deep in
    an event loop (or the sync facade's thread) the answer arrives.
    """

    __slots__ = ("_globals", "_lineno", "filename", "message", "warned")

    def __init__(self, message: str) -> None:
        frame = sys._getframe(caller_stacklevel() - 1)  # a stacklevel counts this frame as 1
        self.message = message
        self.filename = frame.f_code.co_filename
        self._lineno = frame.f_lineno
        self._globals = frame.f_globals  # a module's dict: its warning registry and source
        self.warned = False

    def warn(self) -> None:
        """Say the warning, the first time only."""
        if self.warned:
            return
        self.warned = True
        globals_ = self._globals
        warnings.warn_explicit(
            self.message,
            InsecureURLWarning,
            self.filename,
            self._lineno,
            module=globals_.get("__name__"),
            registry=globals_.setdefault("__warningregistry__", {}),
            module_globals=globals_,
        )

    def __repr__(self) -> str:
        return f"<InsecureURL {self.message!r}>"


#: Headers whose values are secrets: masked wherever headers are shown.
SECRET_HEADERS = frozenset({API_KEY_HEADER, "authorization", "proxy-authorization", "cookie"})


class SecretHeaders(httpx.Headers):
    """The headers of every request: shown with the key and credentials masked.

    httpx masks only ``authorization`` in a `Headers` repr; these mask every
    secret of `SECRET_HEADERS`, so a traceback tool that prints a frame's
    locals by `repr` (rich's `show_locals`, `capture_locals`, Sentry,
    better_exceptions) never shows the key.
    """

    def __repr__(self) -> str:
        items = [
            (name, "[secret]" if name.lower() in SECRET_HEADERS else value)
            for name, value in self.multi_items()
        ]
        names = {name.lower() for name, _ in items}
        shown: object = dict(items) if len(names) == len(items) else items
        return f"{type(self).__name__}({shown!r})"


def redact_url(url: httpx.URL | str) -> str:
    """The URL as it may be shown: a password (and the user name with it) replaced by ``***``."""
    if isinstance(url, str):
        try:
            url = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return "<unparsable URL>"
    if url.userinfo:
        url = url.copy_with(username="***", password=None)
    return str(url)


def caller_stacklevel() -> int:
    """The `warnings.warn` stacklevel, counted from the caller, of the first frame outside the SDK.

    So a warning names the user's line, however deep in the SDK it was raised
    (``AsyncClient(...)`` directly, or through the sync ``Client``).
    """
    package = os.path.dirname(__file__) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame = frame.f_back
        level += 1
    return level


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (so plain http never leaves it)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_api_key(api_key: str | None) -> str:
    """The key from the argument or the environment; checked without echoing it."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if not key:
        raise AudioScapeError(
            f"no API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
        )
    if not isinstance(key, str) or not (key.isascii() and key.isprintable()) or key != key.strip():
        del key  # not left in the traceback's locals
        raise InvalidParameterError(
            "api_key", "must be a string of printable ASCII characters without surrounding spaces"
        )
    return key


def resolve_base_url(base_url: str | httpx.URL | None) -> httpx.URL:
    """The base URL from the argument, the environment or the default; absolute http(s)."""
    raw = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError) as error:
        shown = redact_url(raw) if isinstance(raw, str) else repr(raw)
        message = str(error).replace(str(raw), shown) if isinstance(raw, str) else str(error)
        raise InvalidParameterError("base_url", f"is not a URL: {shown!r} ({message})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidParameterError(
            "base_url", f"must be an absolute http(s) URL, got {redact_url(url)!r}"
        )
    if url.query or url.fragment:
        raise InvalidParameterError("base_url", "must not have a query string or a fragment")
    return url


def _insecure(url: httpx.URL, proxy: Proxy | None) -> InsecureURL | None:
    """The warning a plain-http `url` deserves once it is used over a network, if any."""
    if url.scheme != "http":
        return None
    if not is_loopback(url.host):
        reason = "plain http to a host off this machine"
    elif proxy is not None:
        reason = "plain http through a proxy set in the environment"
    else:
        return None
    return InsecureURL(
        f"base_url {redact_url(url)!r} is {reason}: the API key crosses the network "
        "unencrypted; use https"
    )


def resolve_timeout(timeout: object) -> httpx.Timeout:
    """A number of seconds, an `httpx.Timeout` or None (no limit) as an `httpx.Timeout`."""
    if isinstance(timeout, httpx.Timeout):
        for part, value in timeout.as_dict().items():
            if value is not None:
                check_seconds(f"timeout.{part}", value)
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    # No limit is None: inf overflows aiohttp's timers, and so does an int past a float.
    return httpx.Timeout(check_seconds("timeout", timeout, or_else=", an httpx.Timeout or None"))


def attempt_bound(timeout: httpx.Timeout) -> float | None:
    """The most one attempt may take in all: the largest part of its timeout.

    httpx's own timeouts are per step (each read may take `read` seconds), so a
    server that trickles a byte at a time could hold an attempt forever; this
    bound holds the whole attempt, whatever form the timeout took.
    """
    parts = [value for value in timeout.as_dict().values() if value is not None]
    return max(parts) if parts else None


def resolve_retry(max_retries: object, retry: object, base: RetryPolicy) -> RetryPolicy:
    """`retry` (or `base`) with `max_retries` applied, when given."""
    given = check_optional("retry", retry, RetryPolicy)
    policy = given if given is not None else base
    # 3.0 or True equal 3 and 1, yet are not a count: only an equal int keeps the policy.
    if max_retries is not None and not (
        type(max_retries) is int and max_retries == policy.max_retries
    ):
        policy = attrs.evolve(policy, max_retries=max_retries)  # type: ignore[arg-type]
    return policy


def check_deadline(deadline: object) -> float | None:
    """Seconds for a whole call, or None."""
    if deadline is None:
        return None
    return check_seconds("deadline", deadline, or_else=" or None")


def check_extra_headers(parameter: str, headers: object) -> dict[str, str]:
    """Checked extra headers; none of them may carry the key (pass `api_key`)."""
    checked = check_headers(parameter, headers)
    for name in checked:
        if name.lower() == API_KEY_HEADER:
            raise InvalidParameterError(
                parameter, f"must not set {API_KEY_HEADER}; pass api_key instead"
            )
    return checked


def _basic_auth(url: httpx.URL) -> str | None:
    # What httpx would send for a URL's userinfo, sent here as a header so that
    # the URL the SDK hands to httpx (and its log line) has no password in it.
    if not url.userinfo:
        return None
    token = base64.b64encode(f"{url.username}:{url.password}".encode()).decode("ascii")
    return f"Basic {token}"


@attrs.frozen(repr=False)
class ClientConfig:
    """Everything a call needs that does not change from call to call."""

    base_url: httpx.URL  # without userinfo
    display_url: str  # the base URL as it may be shown
    search_url: httpx.URL
    #: Every request's headers, the key included: never in a repr (rich walks attrs fields).
    headers: SecretHeaders = attrs.field(repr=False)
    timeout: httpx.Timeout
    bound: float | None  # the most one attempt may take in all
    retry: RetryPolicy
    max_response_bytes: int
    api_key: str = attrs.field(repr=False)
    source_url: httpx.URL = attrs.field(repr=False)  # as given: it may hold a password
    default_headers: dict[str, str] = attrs.field(factory=dict)
    base_headers: httpx.Headers | None = attrs.field(default=None, repr=False)
    proxy_checked: bool = True  # False: your own http_client, whose proxies are its own
    #: Whether the environment's proxies (and certificate paths) apply to the SDK's pool.
    trust_env: bool = True
    #: The environment's proxy for `search_url`, or None (direct; or your own http_client).
    proxy: Proxy | None = None
    #: The SDK's own pool (on every wire): the most connections open at once, and the
    #: seconds one may stay idle; httpx's defaults, so that the wire does not change them.
    max_connections: int = 100
    keepalive_expiry: float = 5.0
    #: Said at the first answer over a network socket (`InsecureURL`); None: nothing to say.
    insecure: InsecureURL | None = attrs.field(default=None, repr=False, eq=False)

    def __repr__(self) -> str:
        return f"ClientConfig(base_url={self.display_url!r}, retry={self.retry!r})"

    @classmethod
    def build(
        cls,
        *,
        api_key: str | None,
        base_url: str | httpx.URL | None,
        timeout: object,
        max_retries: object,
        retry: object,
        default_headers: object,
        max_response_bytes: object = DEFAULT_MAX_RESPONSE_BYTES,
        base_headers: httpx.Headers | None = None,
        proxy_checked: bool = True,
        trust_env: object = True,
    ) -> ClientConfig:
        """Check every argument and settle what the calls will share.

        `base_headers` are those of the user's own `http_client`, which the
        SDK's headers go over; `proxy_checked` is False when that client's
        proxies are the user's own business. `trust_env` False leaves the
        environment's proxies out.
        """
        # Every check first, the key last: an error raised once the key is read
        # would keep it in this frame's locals, for a traceback to print.
        url = resolve_base_url(base_url)
        display = redact_url(url)
        if not isinstance(trust_env, bool):
            raise InvalidParameterError(
                "trust_env", f"must be True or False, got {type(trust_env).__name__}"
            )
        bare = url.copy_with(username=None, password=None) if url.userinfo else url
        search_url = bare.copy_with(path=bare.path.rstrip("/") + SEARCH_PATH)
        proxy = environment_proxy(search_url) if proxy_checked and trust_env else None
        insecure = _insecure(url, proxy)
        auth = _basic_auth(url)
        resolved = resolve_timeout(timeout)
        policy = resolve_retry(max_retries, retry, RetryPolicy())
        limit = check_int_range("max_response_bytes", max_response_bytes, 1024, 2**40)
        extra = check_extra_headers("default_headers", default_headers)
        key = resolve_api_key(api_key)
        headers = SecretHeaders(base_headers)
        headers.update(extra)
        headers["user-agent"] = USER_AGENT
        headers["content-type"] = JSON_CONTENT_TYPE
        headers["accept"] = JSON_CONTENT_TYPE
        headers["accept-encoding"] = ACCEPT_ENCODING
        if auth is not None:
            headers["authorization"] = auth
        headers[API_KEY_HEADER] = key
        return cls(
            base_url=bare,
            display_url=display,
            search_url=search_url,
            headers=headers,
            timeout=resolved,
            bound=attempt_bound(resolved),
            retry=policy,
            max_response_bytes=limit,
            api_key=key,
            source_url=url,
            default_headers=extra,
            base_headers=base_headers,
            proxy_checked=proxy_checked,
            trust_env=trust_env,
            proxy=proxy,
            insecure=insecure,
        )

    def evolve(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: object = None,
        timeout_given: bool = False,
        max_retries: object = None,
        retry: object = None,
        default_headers: Mapping[str, str] | None = None,
        max_response_bytes: object = None,
        trust_env: object = None,
    ) -> ClientConfig:
        """This config with some arguments replaced, checked as the constructor checks them.

        The pool's limits stay: a copy shares the pool.
        """
        headers = dict(self.default_headers)
        headers.update(check_extra_headers("default_headers", default_headers))
        config = ClientConfig.build(
            api_key=self.api_key if api_key is None else api_key,
            base_url=self.source_url if base_url is None else base_url,
            timeout=timeout if timeout_given else self.timeout,
            max_retries=max_retries,
            retry=self.retry if retry is None else retry,
            default_headers=headers,
            max_response_bytes=(
                self.max_response_bytes if max_response_bytes is None else max_response_bytes
            ),
            base_headers=self.base_headers,
            proxy_checked=self.proxy_checked,
            trust_env=self.trust_env if trust_env is None else trust_env,
        )
        mine, theirs = self.insecure, config.insecure
        if mine is not None and theirs is not None and mine.message == theirs.message:
            config = attrs.evolve(config, insecure=mine)  # one warning, said once
        return config
