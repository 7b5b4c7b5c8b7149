"""The monitor's probes over kept-alive connections: one connection serves request after
request, a connection the server closed is opened again, a server that does not answer is
a probe error, and a long answer is cut without its connection being reused."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from activities.adapters import keepalive
from tests.components import free_port


class Quiet(ThreadingHTTPServer):
    """A server that does not print the connections its clients cut."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return None


class Server:
    """An HTTP/1.1 server on loopback that answers each GET with the Host it was sent and
    keeps the client ports it saw (one per connection). With `drop`, it closes each
    connection after its answer without saying so, as a server ending an idle keep-alive
    connection does."""

    def __init__(self, port: int) -> None:
        self.ports: list[int] = []
        self.long = False
        self.drop = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                port = self.client_address[1]
                if port not in server.ports:
                    server.ports.append(port)
                body = (self.headers["Host"] or "").encode()
                if server.long:
                    body *= keepalive.BODY_LIMIT
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = server.drop

            def log_message(self, *args: object) -> None:
                return None

        self.http = Quiet(("127.0.0.1", port), Handler)
        self.base = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving and listening."""
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(free_port())
    yield running
    running.close()


def test_one_connection_serves_request_after_request(server: Server) -> None:
    for host in ("a.localhost", "b.localhost", "c.localhost"):
        answer = keepalive.get(server.base, "/", host)
        assert answer.is_success
        assert answer.body == host.encode()
    assert len(server.ports) == 1


def test_a_connection_the_server_closed_is_opened_again(server: Server) -> None:
    server.drop = True
    assert keepalive.get(server.base, "/", "a.localhost").is_success
    assert keepalive.get(server.base, "/", "b.localhost").body == b"b.localhost"
    assert len(server.ports) == 2


def test_a_server_that_does_not_answer_is_a_probe_error() -> None:
    with pytest.raises(keepalive.ProbeError):
        keepalive.get(f"http://127.0.0.1:{free_port()}", "/", "a.localhost")


def test_a_long_answer_is_cut_and_its_connection_not_reused(server: Server) -> None:
    server.long = True
    answer = keepalive.get(server.base, "/", "a.localhost")
    assert len(answer.body) == keepalive.BODY_LIMIT
    server.long = False
    assert keepalive.get(server.base, "/", "a.localhost").body == b"a.localhost"
    assert len(server.ports) == 2
