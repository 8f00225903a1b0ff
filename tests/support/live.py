"""``LiveServer``: uvicorn serving an app on a loopback port in a background thread."""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

from authserver.config import Settings
from authserver.runtime.connections import DeadlineProtocol


class LiveServer:
    """uvicorn serving the app on a loopback port in a background thread.

    Its connections behave as ``authserver serve``'s: the same protocol, the default
    keep-alive and read deadline.
    """

    def __init__(self, app: Starlette, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,
            http=DeadlineProtocol,
            timeout_keep_alive=Settings().keep_alive_timeout,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
