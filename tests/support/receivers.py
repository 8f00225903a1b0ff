"""A webhook receiver and an SMTP server on loopback, for the lifecycle tests.

The receiver verifies nothing itself: the tests verify each delivery it recorded
with the Standard Webhooks reference library.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import anyio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.live import LiveServer
from tests.support.ports import free_port


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """Records every POST; answers each with the next of ``answers`` (then 204).

    An answer is a status code, ``"slow"``: no answer for 30 s, or ``"endless"``: 200
    and a body that never ends.
    """

    answers: list[int | str] = field(default_factory=list)
    received: list[Delivery] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.received.append(Delivery(request.url.path, dict(request.headers), body))
        answer = self.answers.pop(0) if self.answers else 204
        if answer == "slow":
            await anyio.sleep(30)
            answer = 204
        if answer == "endless":
            return StreamingResponse(self._endless(), status_code=200)
        assert isinstance(answer, int)
        headers = {"location": f"http://127.0.0.1:{self.port}/elsewhere"}
        return Response(b"x" * 100, status_code=answer, headers=headers)

    async def _endless(self) -> AsyncIterator[bytes]:
        for _ in range(100_000):  # 6.5 GB: far beyond what a sender may read
            yield b"x" * 65536

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/hook", self._hook, methods=["POST"]),
                Route("/elsewhere", self._hook, methods=["POST", "GET"]),
            ]
        )

    @contextmanager
    def serving(self) -> Iterator[Receiver]:
        server = LiveServer(self.app(), self.port)
        server.server.config.timeout_graceful_shutdown = 1
        with server:
            yield self


@dataclass
class Mailbox:
    """What an SMTP server on loopback accepted; it refuses the first ``refuse`` messages
    with a temporary error (451)."""

    refuse: int = 0
    messages: list[Message] = field(default_factory=list)
    refused: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refused < self.refuse:
            self.refused += 1
            return "451 4.3.0 Try again later"
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        return "250 OK"


@contextmanager
def smtp_server(mailbox: Mailbox, **kwargs: Any) -> Iterator[int]:
    """An aiosmtpd server on a loopback port for ``mailbox``; yields the port."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def mail_text(message: Message) -> str:
    """The text of an e-mail the server sent."""
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    return body.decode()
