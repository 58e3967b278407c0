"""The ASGI app: routers (``routers.api``, ``routers.site``), the shared state they depend on, and the
middleware every request passes through.

Uploads are streamed to the data folder, checked cheaply and queued: scoring happens in the worker
processes, never in the request path. A private submission of another team answers 404, exactly like
one that does not exist; no route serves files. The API is described at ``/openapi.json`` (no
interactive docs page: it would load scripts from a third-party CDN).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from mosxav.evaluation.metrics import METRIC_VERSION
from mosxav_leaderboard.service.board_view import PublicBoard
from mosxav_leaderboard.service.database import Database
from mosxav_leaderboard.service.routers import api, site
from mosxav_leaderboard.service.settings import Settings

log = logging.getLogger("mosxav.serve")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make browsers send "Origin: null"
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


class Guard:
    """Pure ASGI middleware: one JSON log line per request, security headers on every answer, and an
    unexpected error turned into one logged traceback and a plain 500 (never a second traceback from
    the server, never the error's text to the client)."""

    def __init__(self, app: Any, https: bool) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS + ([HSTS] if https else [])

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, state = time.perf_counter(), {"status": 500, "sent": False}

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["sent"] = message["status"], True
                message = {**message, "headers": list(message.get("headers", [])) + self.headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"][:200])
            if not state["sent"]:
                body = json.dumps({"detail": "internal error; the operators have been told"}).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await sending({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})
        finally:
            record = {"event": "request", "method": scope["method"], "path": scope["path"][:200]}
            record |= {"status": state["status"], "ms": round(1000 * (time.perf_counter() - started), 1)}
            log.info(json.dumps(record))


def create_app(settings: Settings) -> FastAPI:
    """The service for ``settings`` (its database schema is made here, once)."""
    database = Database(settings.db, settings.store_home)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 - FastAPI's lifespan protocol
        address = settings.public_url or f"http://{settings.host}:{settings.port}"
        log.info(json.dumps({"event": "ready", "url": address}))
        print(f"MOSXAV-Bench leaderboard serving at {address}", flush=True)
        yield

    app = FastAPI(
        title=settings.title,
        version=METRIC_VERSION,
        description=settings.description,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.board = PublicBoard(database, settings)
    app.include_router(api.router)
    app.include_router(site.router)
    app.add_middleware(Guard, https=settings.secure_cookies)
    return app
