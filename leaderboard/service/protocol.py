"""uvicorn's HTTP protocol with a deadline on request headers.

uvicorn times out an idle kept-alive connection, and the service times out a slow upload body
(``Settings.upload_idle_seconds``), but nothing bounds the time a client takes to send a request's
headers: a client sending them a byte at a time (slowloris) holds a connection, and enough of them
hold every connection the server has. Here a request's headers must arrive whole within
``HEADER_SECONDS`` of its first byte (or of the connection, for the first request), or the connection
is closed. Behind a reverse proxy that buffers headers this never triggers; without one it is the
server's own defence.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Seconds a client has to send a request's headers whole (a browser sends them in one packet).
HEADER_SECONDS = 10.0


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request headers are late."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def _start_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(HEADER_SECONDS, self._headers_too_slow)

    def _stop_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_deadline()

    def on_headers_complete(self) -> None:
        self._stop_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        super().connection_lost(exc)
