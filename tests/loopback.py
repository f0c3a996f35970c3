"""Misbehaving AWS endpoints on loopback, for timing tests with real sockets.

Point one service at one of these with ``AWS_ENDPOINT_URL_<SERVICE>``:
- :class:`BlackHole` accepts connections and never answers;
- :class:`DelayingProxy` forwards each request to a real (moto) endpoint after a delay;
- :func:`refused_endpoint` is a loopback port nothing listens on.
"""

from __future__ import annotations

import http.client
import socket
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
    """An HTTP proxy in front of ``upstream`` that holds each answer back for ``delay`` seconds."""

    def __init__(self, upstream: str, delay: float) -> None:
        target = urlsplit(upstream)
        pause = delay

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as botocore expects

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                time.sleep(pause)
                upstream_connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    headers = {name: value for name, value in self.headers.items() if name.lower() != "expect"}
                    upstream_connection.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream_connection.getresponse()
                    content = answer.read()
                finally:
                    upstream_connection.close()
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
