"""uvicorn's HTTP protocol with a deadline on request headers, and on whole requests but uploads.

uvicorn times out an idle kept-alive connection, and the service times out a slow upload body
(``Settings.upload_idle_seconds``), but nothing bounds the time a client takes to send a request's
headers: a client sending them a byte at a time (slowloris) holds a connection, and enough of them
hold every connection the server has. Here a request's headers must arrive whole within
``HEADER_SECONDS`` of its first byte (or of the connection, for the first request), or the connection
is closed. The same holds for a small body sent slowly (a sign-in form declaring 100 kB and sending a
byte every 2 s): every request but an upload (``UPLOAD_PATH``, which has its own per-chunk deadline and
may take minutes on a slow link) must arrive whole within ``REQUEST_SECONDS`` of its first byte. Behind
a reverse proxy that buffers requests this never triggers; without one it is the server's own defence.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Seconds a client has to send a request's headers whole (a browser sends them in one packet).
HEADER_SECONDS = 10.0
#: Seconds a client has to send a whole request, body included, on every route but uploads (forms and
#: API calls are a few kB).
REQUEST_SECONDS = 20.0
#: The one route whose body may be large and slow: it times out per chunk instead (``uploads``).
UPLOAD_PATH = b"/api/submissions"


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
        self._request_deadline = self.loop.call_later(REQUEST_SECONDS, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._stop_header_deadline()
        if self.url.split(b"?", 1)[0].rstrip(b"/") == UPLOAD_PATH:
            self._stop_request_deadline()  # an upload's body has its own, per-chunk deadline
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_request_deadline()
        super().on_message_complete()

    def _stop_request_deadline(self) -> None:
        deadline = getattr(self, "_request_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._request_deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        self._stop_request_deadline()
        super().connection_lost(exc)
