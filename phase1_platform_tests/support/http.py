"""A real HTTP server on 127.0.0.1 for the vendor fakes (Alpaca, Yahoo, Finnhub REST)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` on 127.0.0.1 (a free port) that serves in a daemon thread
    while it is used as a context manager; ``url`` is its base URL."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler_class)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass


def handler_calling(
    handle: Callable[[BaseHTTPRequestHandler], object], methods: Iterable[str] = ("GET",)
) -> type[BaseHTTPRequestHandler]:
    """A quiet request handler class whose ``do_<METHOD>`` calls ``handle(request)``."""
    namespace = {f"do_{m}": (lambda h: handle(h)) for m in methods}
    return type("Handler", (QuietHandler,), namespace)


def send(
    h: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer a request: status, Content-Type, Content-Length, extra headers, body."""
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(data)


class HTTPFake:
    """Base of a vendor fake: ``handle(request)`` answers every request of ``methods``
    on a ``LocalHTTPServer``; use the fake as a context manager to serve."""

    methods: tuple[str, ...] = ("GET",)

    def __init__(self) -> None:
        self.server = LocalHTTPServer(handler_calling(self.handle, self.methods))
        self.url = self.server.url

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError
