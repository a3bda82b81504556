"""The one reader of environment proxies: which proxy, if any, carries a request to a URL.

The rules are httpx's defaults (what an `httpx.AsyncClient` with
``trust_env=True`` and no transport of its own does), so that every wire of
the SDK goes where httpx would:

- ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``ALL_PROXY`` (or their lower-case
  forms; read by `urllib.request.getproxies`, which also reads the system's
  settings on macOS and Windows) name the proxy for ``http://`` URLs,
  ``https://`` URLs, and both; a scheme's own proxy wins over ``ALL_PROXY``;
  a proxy without a scheme is ``http://``.
- ``NO_PROXY`` lists hosts that go direct: ``*`` (everything), a domain
  (``example.com``: it and its subdomains; ``.example.com``: subdomains
  only), ``localhost``, an IP address or network, any of them with a
  ``:port``, or a URL (``https://example.com``) to exempt one scheme.

`environment_proxy` is read when a client's config is built (as httpx reads
the environment when a client is made); the config keeps the answer for its
base URL, and the wires and the insecure-URL warning all use that one answer.
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.request

import httpx

from audioscape_async._exceptions import AudioScapeError

__all__ = ["Proxy", "environment_proxy"]

#: The proxy schemes the SDK can use (httpx's; SOCKS only on the httpx wire).
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


class Proxy:
    """A proxy to send requests through: its URL without credentials, and their header.

    Not an attrs class, and its repr hides any password: a traceback's locals
    may show it.
    """

    __slots__ = ("credentials", "url")

    def __init__(self, url: httpx.URL) -> None:
        #: The user name and password in the URL, if any.
        self.credentials: tuple[str, str] | None = None
        if url.userinfo:
            self.credentials = (url.username, url.password)
            url = url.copy_with(username=None, password=None)
        #: The proxy's URL, without credentials.
        self.url = url

    @property
    def authorization(self) -> str | None:
        """``Proxy-Authorization`` for the credentials, if any."""
        if self.credentials is None:
            return None
        token = base64.b64encode(":".join(self.credentials).encode()).decode("ascii")
        return f"Basic {token}"

    @property
    def is_socks(self) -> bool:
        """Whether this is a SOCKS proxy (which aiohttp cannot use)."""
        return self.url.scheme in ("socks5", "socks5h")

    def __repr__(self) -> str:
        return f"Proxy({str(self.url)!r}{', with credentials' if self.credentials else ''})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Proxy):
            return NotImplemented
        return (self.url, self.credentials) == (other.url, other.credentials)

    def __hash__(self) -> int:
        return hash((self.url, self.credentials))


def environment_proxy(url: httpx.URL) -> Proxy | None:
    """The proxy the environment sets for `url`, or None when it goes direct."""
    settings = urllib.request.getproxies()
    for entry in settings.get("no", "").split(","):
        if _exempts(entry.strip(), url):
            return None
    raw = settings.get(url.scheme) or settings.get("all")
    if not raw:
        return None
    if "://" not in raw:
        raw = f"http://{raw}"
    try:
        proxy_url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError):
        proxy_url = None
    if proxy_url is None or proxy_url.scheme not in PROXY_SCHEMES or not proxy_url.host:
        # Not shown: it may hold a password.
        raise AudioScapeError(
            f"the environment's proxy for {url.scheme} URLs is not a URL the SDK can use "
            f"(schemes: {', '.join(PROXY_SCHEMES)}); fix it, list the host in NO_PROXY, "
            "or pass trust_env=False"
        )
    return Proxy(proxy_url)


def _exempts(entry: str, url: httpx.URL) -> bool:
    """Whether one ``NO_PROXY`` entry sends `url` direct."""
    if not entry:
        return False
    if entry == "*":
        return True
    if "://" in entry:
        scheme, _, entry = entry.partition("://")
        if scheme not in (url.scheme, "all"):
            return False
    host, port = _split_port(entry.strip("/"))
    if port is not None and port != (url.port or _default_port(url.scheme)):
        return False
    target = url.host.lower()
    host = host.lower().strip("[]")
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        network = None
    if network is not None:
        try:
            return ipaddress.ip_address(target) in network
        except ValueError:
            return False
    if host.startswith("*."):
        return target.endswith(host[1:])
    if host.startswith("."):
        return target.endswith(host)
    host = host.lstrip("*")
    return target == host or (host != "localhost" and target.endswith("." + host))


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:8080
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
