"""A headless Chromium driven over the Chrome DevTools Protocol (a websocket and a few commands):
enough to sign in, fill forms, pick a file and click, as a person would in a browser."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Browser:
    def __init__(self, chromium: str, profile: Path) -> None:
        port = _free_port()
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-allow-origins=*"]
        self.process = subprocess.Popen(
            [chromium, *flags, f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        pages: list[dict] = []
        while time.monotonic() < deadline and not pages:
            try:
                pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
            except httpx.TransportError:
                time.sleep(0.2)
        if not pages:
            self.close()
            raise RuntimeError("chromium did not open its debugging port")
        self.connection = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.socket = self.connection.__enter__()
        self.counter = 0
        self.call("Page.enable")
        self.call("Network.enable")

    def call(self, method: str, **params: Any) -> dict:
        self.counter += 1
        self.socket.send(json.dumps({"id": self.counter, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.counter:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.eval(expression):
                    return
            except RuntimeError:
                pass  # the page is navigating
            time.sleep(0.2)
        raise TimeoutError(f"never true: {expression} (page: {self.eval('location.href')})")

    def goto(self, url: str) -> None:
        """Open ``url`` and wait for the new document (wherever a redirect takes it) to finish loading."""
        self.eval("window.__leaving = true")
        self.call("Page.navigate", url=url)
        self.wait_until("!window.__leaving && document.readyState === 'complete'")

    def set_file(self, selector: str, path: Path) -> None:
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self.call("DOM.setFileInputFiles", nodeId=node, files=[str(path)])

    def cookies(self) -> list[dict]:
        return self.call("Network.getCookies")["cookies"]

    def close(self) -> None:
        if getattr(self, "connection", None) is not None:
            self.connection.__exit__(None, None, None)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
