"""``phase1 serve``: the read API (``--api-port``, 8000) and the dashboard (``--dashboard-port``,
5100) in one process, one event loop, two uvicorn servers.

Both ports are bound before anything is served: a port in use is one line naming it and
the fix (exit 2). The store is opened at startup when it answers, else on the first
request after it does (until then the API answers 503 problems). SIGINT / SIGTERM stop
both servers (open requests finish, WebSockets are closed), close the stream relay and
the store, and exit 0. Logs are JSON lines on stderr: one per request (``api.access_log``),
never a secret or the unmasked database URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys

from ..core.errors import ConfigError
from ._args import add_command, add_database_url

SHUTDOWN_GRACE_S = 5


def add_parser(sub) -> None:
    p = add_command(
        sub, "serve", run,
        help="serve the read API and the live bar dashboard",
        description="Serve the read API (http://HOST:API_PORT, docs at /docs) and the "
        "dashboard (http://HOST:DASHBOARD_PORT) on the store; relay the live bar stream "
        "of an ingestion service (--stream-url). Stops on SIGINT/SIGTERM.",
    )
    add_database_url(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--api-port", type=int, default=8000, help="API port (default 8000; 0: any)")
    p.add_argument("--dashboard-port", type=int, default=5100,
                   help="dashboard port (default 5100; 0: any)")
    p.add_argument("--stream-url", default=None, metavar="ws://HOST:PORT/ws/bars",
                   help="the ingestion service's live bar broadcast to relay "
                   "(phase1 ingest --broadcast-port)")
    p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))


def bind(host: str, port: int, option: str) -> socket.socket:
    """A socket bound to ``host:port``; a ``ConfigError`` naming ``option`` when it cannot."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"{option} must be in 0..65535, got {port}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError):
        raise ConfigError(f"--host {host!r} is not an address or name of this machine: give "
                          "e.g. 127.0.0.1") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} ({option}) on {host} is in use: stop what listens "
                              f"there (another phase1 serve?) or pass {option} with a free "
                              "port") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"port {port} ({option}) needs privileges: use a port above "
                              "1023") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({option}): {exc.strerror}; give "
                          "another --host or port") from None
    sock.set_inheritable(True)
    return sock


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _http(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def url_of(host: str, sock: socket.socket) -> str:
    """``http://host:port`` to print for a bound socket: one a browser on this machine can
    open (a wildcard host, which is no destination, shown as loopback)."""
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    return _http(shown, port)


def address_of(host: str, sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket as bound, wildcard kept: what the dashboard
    is given for the API, so a page loaded from another machine calls the host it came
    from (the page swaps 0.0.0.0 / :: for it) instead of its own loopback."""
    return _http("0.0.0.0" if host == "" else host, sock.getsockname()[1])


def _machine_hosts() -> list[str]:
    """Names and addresses other machines may use for this one: host name, FQDN, what
    they resolve to, and the source address of the default IPv4 / IPv6 route."""
    names = [socket.gethostname(), socket.getfqdn()]
    hosts = list(names)
    for name in names:
        with contextlib.suppress(OSError, UnicodeError):
            hosts += [info[4][0] for info in socket.getaddrinfo(name, None)]
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))  # UDP: picks the route's source address, sends nothing
            hosts.append(s.getsockname()[0])
    return [h.split("%")[0] for h in hosts if h]


def cors_origins(host: str, dashboard_port: int) -> tuple[str, ...]:
    """The origins the API lets call it: the dashboard's (``dashboard_origins``) and, when
    it listens on every interface, the dashboard port on each name and address of this
    machine, the origins a browser elsewhere loads the dashboard from."""
    from ..api.settings import dashboard_origins

    origins = list(dashboard_origins(host or "0.0.0.0", dashboard_port))
    if host in WILDCARD_HOSTS:
        origins += [_http(h, dashboard_port) for h in _machine_hosts()]
    return tuple(dict.fromkeys(origins))


def _server(app, name: str):
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # `phase1 serve` handles the signals of both servers
            yield

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S, server_header=False,
                            ws_ping_interval=20.0)
    server = Server(config)
    server.phase1_name = name
    return server


async def serve_all(servers: list, sockets: list[socket.socket], on_ready=None) -> None:
    """Run the servers until SIGINT/SIGTERM (a second one forces the exit) or one ends;
    ``on_ready()`` once every server accepts connections."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            for s in servers:
                s.force_exit = True
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    tasks = [asyncio.create_task(s.serve(sockets=[sock]), name=s.phase1_name)
             for s, sock in zip(servers, sockets, strict=True)]
    stopper = asyncio.create_task(stop.wait())
    while not all(s.started for s in servers) and not stop.is_set() \
            and not any(t.done() for t in tasks):
        await asyncio.sleep(0.02)
    if on_ready is not None and all(s.started for s in servers):
        on_ready()
    await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for s in servers:
        s.should_exit = True
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed and not stop.is_set():
        raise RuntimeError(f"a server stopped unexpectedly: {failed[0]!r}") from failed[0]


def _loop_factory():
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def run(args: argparse.Namespace) -> int:
    from ..api import ApiSettings, create_api_app
    from ..api.access_log import AccessLog
    from ..ingestion.logs import setup_logging

    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        raise ConfigError(f"--log-level {args.log_level!r}: use DEBUG, INFO, WARNING or ERROR")
    api_sock = bind(args.host, args.api_port, "--api-port")
    try:
        dash_sock = bind(args.host, args.dashboard_port, "--dashboard-port")
    except ConfigError:
        api_sock.close()
        raise
    try:
        api_url, dash_url = url_of(args.host, api_sock), url_of(args.host, dash_sock)
        settings = ApiSettings.create(
            args.database_url, args.stream_url,
            cors_origins=cors_origins(args.host, dash_sock.getsockname()[1]))
        from ..dashboard import create_dashboard_app

        api = create_api_app(settings)
        dashboard_app = create_dashboard_app(address_of(args.host, api_sock))
        dashboard = AccessLog(dashboard_app, server="dashboard")
        setup_logging(level)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        def ready() -> None:
            print(f"store: {settings.masked_url}", flush=True)
            print(f"stream: {api.state.relay.masked_url or 'not configured (--stream-url)'}",
                  flush=True)
            print(f"API: {api_url}  (docs {api_url}/docs)", flush=True)
            print(f"dashboard: {dash_url}", flush=True)

        servers = [_server(api, "api"), _server(dashboard, "dashboard")]
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve_all(servers, [api_sock, dash_sock], ready))
    finally:
        api_sock.close()
        dash_sock.close()
    print("phase1 serve: stopped", file=sys.stderr, flush=True)
    return 0


__all__ = ["add_parser", "address_of", "bind", "cors_origins", "run", "serve_all",
           "url_of"]
