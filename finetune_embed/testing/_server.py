"""The loopback HTTP server: the same fake, reachable at ``http://127.0.0.1:PORT/v1`` from any HTTP client."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .._logging import get_logger
from ._http import FakeRequest

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = ["serve"]

logger = get_logger("testing")


def _handler_class(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeOpenAI/1.0"

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            req = FakeRequest(
                method=self.command.upper(),
                path=path,
                query_string=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            from urllib.parse import unquote

            req.path = unquote(req.path)
            resp = fake.handle(req)
            if resp.delay > 0:
                time.sleep(resp.delay / fake.clock.scale if fake.clock.realtime else resp.delay)
            if resp.fault == "timeout":
                time.sleep(resp.hold)
            if resp.fault is not None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("loopback: " + format, *args)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-request (a killed process, a timeout) is normal here: log, don't print."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            logger.debug("loopback: client %s went away: %r", client_address, exc)
            return
        logger.warning("loopback: error while serving %s", client_address, exc_info=True)


@contextlib.contextmanager
def serve(
    fake: FakeOpenAI, *, host: str = "127.0.0.1", port: int = 0, realtime: bool = True, scale: float | None = None
) -> Iterator[str]:
    """Run ``fake`` on ``host:port`` (0: a free port) in a daemon thread until the block ends."""
    was_realtime, old_scale = fake.clock.realtime, fake.clock.scale
    if realtime and not was_realtime:
        fake.clock.set_realtime(True, scale=scale if scale is not None else 1.0)
    elif realtime and scale is not None:
        fake.clock.set_realtime(True, scale=scale)
    server = _Server((host, port), _handler_class(fake))
    thread = threading.Thread(target=server.serve_forever, name="FakeOpenAI-loopback", daemon=True)
    thread.start()
    url = f"http://{host}:{server.server_address[1]}/v1"
    fake.base_url = url
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        fake.base_url = None
        if fake.clock.realtime != was_realtime or fake.clock.scale != old_scale:
            fake.clock.set_realtime(was_realtime, scale=old_scale)
