"""The worker's one Prometheus endpoint: Slipway's metrics, then the Temporal SDK's.

The SDK serves its metrics from its own (Rust) runtime on a port of its own; this endpoint
fetches them at scrape time and appends them to Slipway's, so an operator scrapes one target
per worker. Both listen on loopback unless configured otherwise (`SLIPWAY_METRICS_ADDRESS`).
"""

import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

SDK_TIMEOUT = 2.0
"""How long a scrape waits for the SDK's own endpoint, on the same machine."""


def free_loopback_address() -> str:
    """A loopback address no one listens on now, for the SDK's own endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def scrape_text(sdk_address: str | None) -> bytes:
    """Slipway's metrics in the text format, and the SDK's after them when it answers."""
    ours = generate_latest(REGISTRY)
    if sdk_address is None:
        return ours
    try:
        with urllib.request.urlopen(f"http://{sdk_address}/metrics", timeout=SDK_TIMEOUT) as answer:
            theirs: bytes = answer.read()
    except (urllib.error.URLError, OSError) as err:
        return ours + f"# Temporal SDK metrics unavailable: {err}\n".encode()
    return ours + theirs


class MetricsEndpoint:
    """`GET /metrics` on `address:port`, served from a daemon thread until `close`."""

    def __init__(self, address: str, port: int, sdk_address: str | None) -> None:
        sdk = sdk_address

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = scrape_text(sdk)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Scrapes are not worth a log line each."""

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop answering and free the port."""
        self.server.shutdown()
        self.server.server_close()
