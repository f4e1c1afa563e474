"""The one helper for every URL a tenant gives (tenants/outbound.py), against local servers that misbehave.

The servers run on loopback. "Production" here is the strict policy (private and loopback addresses
refused) with 127.0.0.1 allowed explicitly, as an operator allows an internal network
(``EGOV_OUTBOUND_ALLOWED_NETWORKS``); 127.0.0.2 then stands for an internal address. Only the name
resolution is replaced, in the rebinding test: it plays a hostile DNS server.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from tenants import outbound
from tenants.outbound import OutboundError

BIG = 30 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802, C901 - http.server's name; one branch per misbehaviour
        self.seen.append((self.command, self.path, self.headers.get("Host")))
        path = self.path
        if path == "/json":
            self._send(200, json.dumps({"server": self.server.name}).encode(), {"Content-Type": "application/json"})
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            self._send(302, headers={"Location": "/json" if left == 0 else f"/hops/{left - 1}"})
        elif path.startswith("/to/"):
            self._send(302, headers={"Location": path[len("/to/"):]})
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            for _ in range(600):  # a byte every 50 ms: never a pause a per-read timeout would catch
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
        elif path == "/silent":
            time.sleep(30)
        elif path == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            chunk = b"x" * 65536
            for _ in range(BIG // len(chunk)):
                self.wfile.write(chunk)
        elif path == "/huge-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"y" * 65536
            for _ in range(BIG // len(chunk)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404)

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.command, self.path, body.decode()))
        if self.path == "/moved" or self.path.startswith("/to/"):
            self._send(307, headers={"Location": "/form" if self.path == "/moved" else self.path[len("/to/"):]})
        else:
            self._send(200, json.dumps({"got": body.decode()}).encode(), {"Content-Type": "application/json"})


def _start(host: str, port: int = 0, name: str = "public", tls: ssl.SSLContext | None = None):
    seen: list = []
    handler = type("H", (Handler,), {"seen": seen})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.name = name
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls else "http"
    return SimpleNamespace(server=server, port=server.server_port, url=f"{scheme}://{host}:{server.server_port}",
                           seen=seen)


@pytest.fixture(scope="module")
def public():
    started = _start("127.0.0.1")
    yield started
    started.server.shutdown()


@pytest.fixture(scope="module")
def internal(public):
    """An internal service on 127.0.0.2 (same port as the public one, for the rebinding test)."""
    started = _start("127.0.0.2", public.port, name="internal")
    yield started
    started.server.shutdown()


@pytest.fixture
def strict(settings):
    """Production's policy, with the test servers' 127.0.0.1 allowed as an operator allows a network."""
    return dataclasses.replace(settings, outbound_allow_private_addresses=False,
                               outbound_allowed_networks=("127.0.0.1/32",))


def _reason(call) -> str:
    with pytest.raises(OutboundError) as caught:
        call()
    assert str(caught.value)  # a message for people, in German where people see it
    return caught.value.reason


def test_fetches_json_and_follows_a_few_redirects(settings, public):
    assert outbound.fetch(public.url + "/json", settings).json() == {"server": "public"}
    assert outbound.fetch(public.url + "/hops/2", settings).json() == {"server": "public"}
    assert _reason(lambda: outbound.fetch(public.url + "/hops/10", settings)) == "redirect"


def test_production_refuses_private_and_loopback_addresses(strict, public, internal):
    assert outbound.fetch(public.url + "/json", strict).status == 200  # the allowed network
    before = len(internal.seen)
    for url in (internal.url + "/json", "http://10.20.30.40/x", "http://[::1]:80/x", "http://169.254.169.254/latest",
                f"http://[::ffff:127.0.0.2]:{internal.port}/json", f"http://0.0.0.0:{internal.port}/json"):
        assert _reason(lambda url=url: outbound.fetch(url, strict)) == "address", url
    assert len(internal.seen) == before


def test_no_redirect_to_an_address_production_refuses(strict, public, internal):
    before = len(internal.seen)
    for target in (internal.url + "/json", "http://10.20.30.40/metadata", f"http://127.0.0.2:{internal.port}/json"):
        assert _reason(lambda t=target: outbound.fetch(f"{public.url}/to/{t}", strict)) == "address"
    assert len(internal.seen) == before


def test_the_checked_address_is_the_one_connected_to(strict, public, internal, monkeypatch):
    """DNS rebinding: the first answer passes the check, every later one names the internal host."""
    answers = iter([["127.0.0.1"]])
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: next(answers, ["127.0.0.2"]))
    answer = outbound.fetch(f"http://idp.rebind.example:{public.port}/json", strict)
    assert answer.json() == {"server": "public"}
    assert public.seen[-1][2] == f"idp.rebind.example:{public.port}"  # the name still goes in the Host header


def test_a_post_is_not_redirected(settings, public):
    assert outbound.fetch(public.url + "/form", settings, method="POST", data={"a": "1"}).json() == {"got": "a=1"}
    assert _reason(lambda: outbound.fetch(public.url + "/moved", settings, method="POST", data={"t": "s"})) \
        == "redirect"
    assert [s for s in public.seen if s[1] == "/form"] == [("POST", "/form", "a=1")]


def test_a_total_time_limit_holds_for_slow_and_silent_answers(settings, public):
    assert _reason(lambda: outbound.fetch(public.url + "/stall", settings, timeout=1.0)) == "timeout"
    assert _reason(lambda: outbound.fetch(public.url + "/silent", settings, timeout=1.0)) == "timeout"


def test_answers_beyond_the_size_cap_are_refused(settings, public):
    assert _reason(lambda: outbound.fetch(public.url + "/huge", settings, max_bytes=1024 * 1024)) == "too_large"
    assert _reason(lambda: outbound.fetch(public.url + "/huge-chunked", settings, max_bytes=1024 * 1024)) \
        == "too_large"


def test_only_http_and_https(settings):
    for url in ("file:///etc/passwd", "gopher://127.0.0.1/", "ftp://127.0.0.1/x", "http:///nohost"):
        assert _reason(lambda url=url: outbound.fetch(url, settings)) == "scheme", url


def _certificate_authority(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, issuer, key, signer, **extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1)))
        for extension, critical in extensions.values():
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test-Verwaltungs-CA")])
    ca = cert(ca_name, ca_name, ca_key, ca_key, basic=(x509.BasicConstraints(ca=True, path_length=None), True))
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.marburg.example")]), ca_name, key, ca_key,
                san=(x509.SubjectAlternativeName([x509.DNSName("idp.marburg.example")]), False))
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp_path / "ca.pem", tmp_path / "leaf.pem"


def test_https_checks_the_certificate_for_the_name_while_connecting_to_the_checked_address(settings, tmp_path,
                                                                                             monkeypatch):
    ca, leaf = _certificate_authority(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf)
    server = _start("127.0.0.1", tls=context)
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: ["127.0.0.1"])
    url = f"https://idp.marburg.example:{server.port}/json"
    try:
        assert _reason(lambda: outbound.fetch(url, settings)) == "tls"  # a CA nobody configured
        trusting = dataclasses.replace(settings, outbound_ca_file=str(ca))
        assert outbound.fetch(url, trusting).json() == {"server": "public"}
        # The certificate is for idp.marburg.example, not for another name at the same address.
        assert _reason(lambda: outbound.fetch(f"https://other.example:{server.port}/json", trusting)) == "tls"
    finally:
        server.server.shutdown()


def test_matomo_pulls_go_through_the_helper(app, strict, public, internal):
    """A tenant's Matomo address pointing inside the network is refused in production; nothing internal shows."""
    from datetime import date

    from tenants.ingest import matomo

    before = len(internal.seen)
    with app.app_context():
        app.config["EGOV"], saved = strict, app.config["EGOV"]
        try:
            with pytest.raises(matomo.MatomoError) as caught:
                matomo.report(internal.url, "token", "VisitsSummary.get", 1, date(2026, 3, 1), date(2026, 3, 2))
            with pytest.raises(matomo.MatomoError):
                matomo.report(f"{public.url}/to/{internal.url}", "token", "VisitsSummary.get", 1, date(2026, 3, 1),
                            date(2026, 3, 2))
        finally:
            app.config["EGOV"] = saved
    assert len(internal.seen) == before and "internal" not in str(caught.value)


def test_the_connection_test_reads_discovery_through_the_helper(settings, public):
    """The 30 MB and the silent discovery answers of the issue: refused with a message, not downloaded or waited for."""
    from tenants.identity import IdentityError, check_provider

    # Outside a request the message ids (English) show; the pages show them in German.
    for path, fragment in (("/huge", "larger than 512 kB"), ("/silent", "did not answer within 1 seconds")):
        with pytest.raises(IdentityError) as caught:
            check_provider(public.url + path, dataclasses.replace(settings, oidc_timeout=1.0))
        assert fragment in str(caught.value)
