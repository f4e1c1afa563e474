"""Fetching a URL that a tenant (or anyone signing up) gave: the one way the platform does it.

Every connector goes through :func:`fetch`: the identity provider's discovery document, key set,
token and userinfo endpoints (through :class:`OutboundAdapter`, which Authlib's requests session
uses), "Verbindung testen", and Matomo's Reporting API. The URL comes from outside, so:

1. **http and https only.**
2. **The name is resolved once and the checked address is the one connected to.** Every address
   the name resolves to must be allowed: public (``ipaddress``'s ``is_global``, not multicast,
   IPv4 embedded in IPv6 checked as IPv4), inside ``EGOV_OUTBOUND_ALLOWED_NETWORKS``, or anything
   when ``EGOV_OUTBOUND_ALLOW_PRIVATE_ADDRESSES`` is on (development). The connection then goes
   to that address, so a DNS answer that changes between check and connect (DNS rebinding)
   reaches nothing internal. TLS still verifies the certificate for the *name* (SNI).
3. **Redirects** are followed for GET only, at most :data:`MAX_REDIRECTS`, each hop checked like
   the first. A POST is never redirected: its body may carry a secret (a client secret, a Matomo
   token) that a redirect would hand to another host.
4. **One time limit for everything** (connect, TLS, every hop, headers, body), enforced by a
   watchdog that shuts the socket at the deadline, so a server that sends a byte now and then
   cannot hold a worker or a request.
5. **A size cap** on the body (a ``Content-Length`` beyond it is refused before reading);
   compressed answers are not asked for, so the cap is the size in memory.

Errors are :class:`OutboundError` with a ``reason`` (``scheme``, ``address``, ``resolve``,
``connect``, ``tls``, ``timeout``, ``too_large``, ``redirect``, ``protocol``) and a message for
people. The message never contains what the server answered: an internal service's answer must
not end up on a page (the health page shows connector errors).

Not supported on purpose: proxies from the environment (``HTTPS_PROXY``); the address check
would then be the proxy's job.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from flask_babel import lazy_gettext as _l
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

MAX_REDIRECTS = 3
#: Default size cap: discovery documents and key sets are a few kilobytes.
DEFAULT_MAX_BYTES = 1024 * 1024
REDIRECTS = {301, 302, 303, 307, 308}
CHUNK = 65536
USER_AGENT = "eGovSAD (+https://github.com/egovsad)"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundError(Exception):
    """The URL was not fetched; ``reason`` says which rule or failure, the message says it to people."""

    def __init__(self, reason: str, message):
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


@dataclass
class Answer:
    """What a server answered (a redirect already followed)."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    url: str
    history: list[str] = field(default_factory=list)

    def json(self) -> Any:
        """The body as JSON. :raise ValueError: it is not JSON."""
        return json.loads(self.body)


def _resolve(host: str, port: int) -> list[str]:
    """Every address of ``host``, in the resolver's order (the one place names are resolved)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(address: str, settings) -> bool:
    """May the platform connect to this address? See the module's rule 2."""
    if settings.outbound_allow_private_addresses:
        return True
    ip = ipaddress.ip_address(address.split("%")[0])
    if any(ip in ipaddress.ip_network(n, strict=False) for n in settings.outbound_allowed_networks):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and _embedded_ipv4(ip) is not None:
        ip = _embedded_ipv4(ip)
    return ip.is_global and not ip.is_multicast


def checked_addresses(host: str, port: int, settings) -> list[str]:
    """Resolve ``host`` once; :raise OutboundError: it does not resolve or any address is not allowed."""
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise OutboundError("resolve", _l("The name %(host)s cannot be resolved.", host=host)) from exc
    if not addresses or not all(address_allowed(a, settings) for a in addresses):
        # The addresses themselves are not shown: the sign-up is public, and they would tell a
        # stranger what the operator's internal names resolve to.
        raise OutboundError("address", _l("%(host)s points to an address that is not public; the platform does "
                                          "not connect there.", host=host))
    return addresses


def _tls_context(settings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.outbound_ca_file:
        context.load_verify_locations(settings.outbound_ca_file)
    return context


class _Watchdog:
    """Shuts the socket down at the deadline, whatever the reading thread is waiting for."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        if self.sock is not None:
            try:
                # socket.socket's own shutdown, also for an SSLSocket: an OS-level shutdown that makes
                # a blocked read return, without touching the TLS state another thread is using.
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def cancel(self) -> None:
        self.timer.cancel()


def _connect(host: str, port: int, addresses: list[str], watchdog: _Watchdog) -> socket.socket:
    last: OSError | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout=watchdog.remaining())
            watchdog.sock = sock
            return sock
        except TimeoutError:
            raise
        except OSError as exc:
            last = exc
    raise OutboundError("connect", _l("%(host)s cannot be reached.", host=host)) from last


def _host_header(host: str, port: int, scheme: str) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == {"http": 80, "https": 443}[scheme] else f"{name}:{port}"


def _read_body(response: http.client.HTTPResponse, sock: socket.socket, watchdog: _Watchdog, max_bytes: int,
               host: str) -> bytes:
    too_large = OutboundError("too_large", _l("The answer of %(host)s is larger than %(size)s kB.", host=host,
                                              size=max_bytes // 1024))
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise too_large
    parts, size = [], 0
    while True:
        sock.settimeout(watchdog.remaining())
        chunk = response.read1(CHUNK)
        if not chunk:
            if time.monotonic() >= watchdog.deadline:
                raise TimeoutError  # the watchdog ended the read, not the server
            if length and length.isdigit() and size < int(length):
                raise OutboundError("protocol", _l("The answer of %(host)s broke off.", host=host))
            return b"".join(parts)
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        parts.append(chunk)


def _exchange(url: str, method: str, body: bytes | None, headers: dict[str, str], watchdog: _Watchdog,
              max_bytes: int, settings) -> Answer:
    """One request to one URL, on a connection to the address checked for it."""
    parts = urlsplit(url)
    host, scheme = parts.hostname or "", parts.scheme
    port = parts.port or {"http": 80, "https": 443}[scheme]
    sock = _connect(host, port, checked_addresses(host, port, settings), watchdog)
    try:
        if scheme == "https":
            try:
                sock.settimeout(watchdog.remaining())
                sock = _tls_context(settings).wrap_socket(sock, server_hostname=host)
                watchdog.sock = sock
            except (ssl.SSLError, ssl.CertificateError) as exc:
                raise OutboundError("tls", _l("The TLS certificate of %(host)s is not valid here (%(error)s).",
                                              host=host, error=getattr(exc, "verify_message", "") or
                                              type(exc).__name__)) from exc
        connection = http.client.HTTPConnection(host, port)
        connection.sock = sock
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sock.settimeout(watchdog.remaining())
        connection.request(method, target, body=body, headers={
            **headers, "Host": _host_header(host, port, scheme), "Accept-Encoding": "identity", "Connection": "close",
            "User-Agent": USER_AGENT})
        sock.settimeout(watchdog.remaining())
        response = connection.getresponse()
        content = _read_body(response, sock, watchdog, max_bytes, host)
        return Answer(response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, content, url)
    except http.client.HTTPException as exc:
        if time.monotonic() >= watchdog.deadline:
            raise TimeoutError from exc
        raise OutboundError("protocol", _l("%(host)s does not answer with HTTP.", host=host)) from exc
    finally:
        sock.close()


def fetch(url: str, settings, *, method: str = "GET", data: dict[str, Any] | None = None,
          body: bytes | str | None = None, headers: dict[str, str] | None = None, timeout: float | None = None,
          max_bytes: int = DEFAULT_MAX_BYTES) -> Answer:
    """Fetch ``url`` under the rules of this module.

    :param data: a form to POST (encoded as ``application/x-www-form-urlencoded``); or ``body``.
    :param timeout: seconds for everything, default ``settings.oidc_timeout``.
    :param max_bytes: the largest body accepted.
    :raise OutboundError: a rule refused the URL, or the server failed (see the module docstring).
    """
    headers = dict(headers or {})
    if data is not None:
        body = urlencode(data)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if isinstance(body, str):
        body = body.encode()
    seconds = timeout or settings.oidc_timeout
    watchdog = _Watchdog(time.monotonic() + seconds)
    history: list[str] = []
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise OutboundError("scheme", _l("Only addresses starting with https:// or http:// can be used."))
            answer = _exchange(url, method, body, headers, watchdog, max_bytes, settings)
            location = answer.headers.get("location")
            if answer.status not in REDIRECTS or not location:
                answer.history = history
                return answer
            if method != "GET":
                raise OutboundError("redirect", _l("%(host)s redirects the request to another address; enter that "
                                                   "address instead.", host=parts.hostname))
            history.append(url)
            url = urljoin(url, location)
        raise OutboundError("redirect", _l("%(host)s redirects too often.", host=urlsplit(history[0]).hostname))
    except TimeoutError as exc:
        raise OutboundError("timeout", _l("%(host)s did not answer within %(seconds)s seconds.",
                                          host=urlsplit(url).hostname, seconds=f"{seconds:g}")) from exc
    except OSError as exc:
        if time.monotonic() >= watchdog.deadline:
            raise OutboundError("timeout", _l("%(host)s did not answer within %(seconds)s seconds.",
                                              host=urlsplit(url).hostname, seconds=f"{seconds:g}")) from exc
        raise OutboundError("connect", _l("%(host)s cannot be reached.", host=urlsplit(url).hostname)) from exc
    finally:
        watchdog.cancel()


class OutboundAdapter(BaseAdapter):
    """A requests transport that sends every request through :func:`fetch`.

    Mounted on Authlib's requests sessions (``portal/sso.py``), so discovery, key set, token and
    userinfo requests to a tenant's identity provider follow the same rules as everything else.
    """

    def __init__(self, settings, *, max_bytes: int = DEFAULT_MAX_BYTES):
        super().__init__()
        self.settings = settings
        self.max_bytes = max_bytes

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("accept-encoding", "connection")}
        answer = fetch(request.url, self.settings, method=request.method, body=request.body, headers=headers,
                       max_bytes=self.max_bytes)
        response = requests.Response()
        response.status_code, response.reason = answer.status, answer.reason
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.body
        response.url, response.request = answer.url, request
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        return response

    def close(self) -> None:
        pass
