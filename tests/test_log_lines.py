"""The serving worker's audit and access lines: batched, and the same text the log handler writes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading

import pytest

from authserver.runtime.ops import OneLineFormatter
from authserver.security import audit
from authserver.security.audit import LineWriter

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class CountingStream(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def stream() -> CountingStream:
    return CountingStream()


def handler_text(name: str, message: str) -> str:
    """What ``configure_logging``'s handler writes for ``message`` on logger ``name``."""
    record = logging.LogRecord(name, logging.INFO, "", 0, message, None, None)
    return OneLineFormatter(FORMAT).format(record) + "\n"


def without_time(line: str) -> str:
    return line.split(" ", 2)[2]


def test_line_is_the_text_the_log_handler_writes(stream: CountingStream) -> None:
    message = 'GET /x\r\n2026-01-01 INFO authserver.audit {"event": "forged"} 200'
    LineWriter(stream, None).line("INFO", "authserver.access", message)
    [written] = stream.writes
    expected = handler_text("authserver.access", message)
    assert without_time(written) == without_time(expected)
    assert written.count("\n") == 1
    assert written[:23].replace(",", ".")[:19] == expected[:19]


def test_off_the_event_loop_a_line_is_written_at_once(stream: CountingStream) -> None:
    writer = LineWriter(stream, None)
    writer.line("INFO", "authserver.audit", "one")
    writer.line("INFO", "authserver.audit", "two")
    assert [without_time(text) for text in stream.writes] == [
        "INFO authserver.audit one\n",
        "INFO authserver.audit two\n",
    ]


def test_lines_of_one_loop_turn_are_written_together_after_it(stream: CountingStream) -> None:
    writer = LineWriter(stream, None)
    seen_during_turn: list[int] = []

    async def turn() -> None:
        for n in range(5):
            writer.line("INFO", "authserver.audit", f"line {n}")
        seen_during_turn.append(len(stream.writes))
        await asyncio.sleep(0)

    asyncio.run(turn())
    assert seen_during_turn == [0]
    [written] = stream.writes
    assert [without_time(line + "\n") for line in written.splitlines()] == [
        f"INFO authserver.audit line {n}\n" for n in range(5)
    ]


def test_a_full_batch_is_written_without_waiting_for_the_turn(stream: CountingStream) -> None:
    writer = LineWriter(stream, None)

    async def turn() -> int:
        for n in range(LineWriter.MAX_LINES):
            writer.line("INFO", "authserver.audit", f"line {n}")
        return len(stream.writes)

    assert asyncio.run(turn()) == 1
    assert stream.getvalue().count("\n") == LineWriter.MAX_LINES


def test_a_line_from_another_thread_takes_the_waiting_ones_with_it(
    stream: CountingStream,
) -> None:
    writer = LineWriter(stream, None)

    async def turn() -> list[str]:
        writer.line("INFO", "authserver.audit", "from the loop")
        thread = threading.Thread(
            target=writer.line, args=("INFO", "authserver.audit", "from a thread")
        )
        thread.start()
        thread.join()
        return list(stream.writes)

    [written] = asyncio.run(turn())
    assert [without_time(line + "\n") for line in written.splitlines()] == [
        "INFO authserver.audit from the loop\n",
        "INFO authserver.audit from a thread\n",
    ]


def test_audit_events_go_to_the_writer_when_one_is_in_use(
    stream: CountingStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "authserver.audit")
    audit.use_writer(LineWriter(stream, None))
    try:
        audit.audit("token_revoked", client_id="c1", jti="j1", source=None)
    finally:
        audit.use_writer(None)
    assert not [r for r in caplog.records if r.name == "authserver.audit"]
    [written] = stream.writes
    assert without_time(written).startswith("INFO authserver.audit ")
    assert json.loads(written.split(" ", 4)[4]) == {
        "event": "token_revoked",
        "client_id": "c1",
        "jti": "j1",
    }


def test_without_a_writer_audit_events_are_log_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "authserver.audit")
    audit.audit("token_revoked", client_id="c1", jti="j1")
    [record] = [r for r in caplog.records if r.name == "authserver.audit"]
    assert json.loads(record.getMessage()) == {
        "event": "token_revoked",
        "client_id": "c1",
        "jti": "j1",
    }


def test_a_handler_on_the_audit_logger_gets_every_event_even_with_a_writer(
    stream: CountingStream,
) -> None:
    """A sink attached to ``authserver.audit`` itself still sees each event as a record."""
    seen: list[logging.LogRecord] = []

    class Sink(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    sink = Sink()
    logger = logging.getLogger("authserver.audit")
    logger.addHandler(sink)
    level = logger.level
    logger.setLevel(logging.INFO)
    audit.use_writer(LineWriter(stream, None))
    try:
        audit.audit("token_revoked", client_id="c1", jti="j1")
    finally:
        audit.use_writer(None)
        logger.removeHandler(sink)
        logger.setLevel(level)
    [record] = seen
    assert json.loads(record.getMessage())["event"] == "token_revoked"
    assert stream.writes == []
