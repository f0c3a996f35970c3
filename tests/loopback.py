"""Misbehaving AWS endpoints on loopback, for timing tests with real sockets.

Point one service at one of these with ``AWS_ENDPOINT_URL_<SERVICE>``:
- :class:`BlackHole` accepts connections and never answers;
- :class:`DelayingProxy` answers each request from a real (moto) endpoint, a set time after it arrived;
- :func:`refused_endpoint` is a loopback port nothing listens on;
- :func:`self_signed_tls` makes https on loopback possible, with a certificate only the test trusts.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class BlackHole:
    """Accepts TCP connections, reads nothing, answers nothing, until stopped."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        for connection in self._connections:
            connection.close()
        self._listener.close()


class DelayingProxy:
    """An HTTP proxy in front of ``upstream`` that answers each request ``delay`` seconds after it
    arrived: the upstream's own time is part of the delay, so how slow an answer is does not depend
    on how fast moto answers on a loaded machine."""

    def __init__(self, upstream: str, delay: float) -> None:
        target = urlsplit(upstream)
        pause = delay

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as botocore expects

            def _forward(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                upstream_connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    headers = {name: value for name, value in self.headers.items() if name.lower() != "expect"}
                    upstream_connection.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream_connection.getresponse()
                    content = answer.read()
                finally:
                    upstream_connection.close()
                time.sleep(max(0.0, pause - (time.monotonic() - arrived)))
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="delaying-proxy", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def refused_endpoint() -> str:
    """A loopback URL whose port refuses connections (bound once, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def self_signed_tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client context that trusts it
    (and nothing else). The default context refuses that certificate, as it should."""
    import ipaddress
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from cryptography import x509  # imported here: the receiver's timing tests need none of it
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:  # load_cert_chain reads files only
        chain = Path(directory, "chain.pem")
        chain.write_bytes(key_pem + certificate_pem)
        server.load_cert_chain(chain)
    client = ssl.create_default_context(cadata=certificate_pem.decode())
    return server, client
