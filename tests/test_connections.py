"""HTTP connections of a real ``authserver serve``: keep-alive, read deadline, cap, shutdown."""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'authserver.db'}"


def connection(server: ServerProcess) -> http.client.HTTPConnection:
    """One HTTP/1.1 connection that never reconnects by itself (as Go's pooled connection)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.connect()
    conn.auto_open = 0
    return conn


def get(conn: http.client.HTTPConnection, path: str = "/healthz") -> http.client.HTTPResponse:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response


def test_idle_keep_alive_connection_is_reused_after_two_poll_intervals(sqlite_url: str,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    # Longer than two of cone's 5 s polls, and than request_read_timeout (10 s).
    with ServerProcess(sqlite_url, tmp_path) as server:
        conn = connection(server)
        assert get(conn).status == 200
        local = conn.sock.getsockname()
        time.sleep(11)
        assert get(conn).status == 200  # http.client.RemoteDisconnected if it was closed
        assert conn.sock.getsockname() == local
        conn.close()


def test_headers_sent_slowly_are_cut_off_at_the_read_deadline_while_healthz_answers(
    sqlite_url: str, tmp_path: Path
) -> None:
    with ServerProcess(sqlite_url, tmp_path, AUTHSERVER_REQUEST_READ_TIMEOUT="2") as server:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        header = b"X-Slow: " + b"a" * 40 + b"\r\n\r\n"  # 50 s at one byte a second
        started = time.monotonic()
        cut_off = False
        for byte in header:
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            try:
                slow.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                cut_off = True
                break
            slow.settimeout(1)
            try:
                if slow.recv(1024) == b"":
                    cut_off = True
                    break
            except TimeoutError:
                pass
        elapsed = time.monotonic() - started
        slow.close()
    assert cut_off, "the slow client was never cut off"
    assert elapsed < 20, f"cut off only after {elapsed:.0f}s"


def test_connection_idle_before_its_first_request_is_closed_at_the_read_deadline(
    sqlite_url: str, tmp_path: Path
) -> None:
    with ServerProcess(sqlite_url, tmp_path, AUTHSERVER_REQUEST_READ_TIMEOUT="1") as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        assert silent.recv(1024) == b""  # closed by the server; a timeout raises instead
        silent.close()


def test_connections_beyond_max_connections_are_closed_at_once(sqlite_url: str,
                                                               tmp_path: Path) -> None:  # fmt: skip
    with ServerProcess(sqlite_url, tmp_path, AUTHSERVER_MAX_CONNECTIONS="16") as server:
        held = [connection(server) for _ in range(16)]
        for conn in held:
            assert get(conn).status == 200
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            answer = extra.recv(1024)
        except ConnectionResetError:
            answer = b""
        assert answer == b""
        extra.close()
        held.pop().close()
        time.sleep(0.5)
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        for conn in held:
            conn.close()


def test_at_max_connections_a_new_connection_closes_the_oldest_waiting_for_headers(
    sqlite_url: str, tmp_path: Path
) -> None:
    with ServerProcess(sqlite_url, tmp_path, AUTHSERVER_MAX_CONNECTIONS="16") as server:
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
        time.sleep(0.5)  # all accepted, in this order
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        oldest = silent[0]
        oldest.settimeout(5)
        assert oldest.recv(1024) == b""  # closed to make room
        for sock in silent:
            sock.close()


@pytest.fixture
def low_open_file_limit() -> Iterator[int]:
    """A soft RLIMIT_NOFILE of 256 for the processes started inside (the hard one unchanged)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_serve_raises_its_open_file_limit_to_the_hard_limit(
    sqlite_url: str, tmp_path: Path, low_open_file_limit: int
) -> None:
    with ServerProcess(sqlite_url, tmp_path) as server:
        assert server.process is not None
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    soft = line.split()[3]
    assert int(soft) == min(low_open_file_limit, 1 << 20)


# Shutdown ---------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_steady_stream_across_sigterm_loses_no_accepted_request_and_readyz_turns_503(
    sqlite_url: str, tmp_path: Path, workers: int
) -> None:
    lost: list[str] = []
    answered_after_signal = 0
    readyz_during_drain: list[int] = []
    signalled = threading.Event()
    stop = threading.Event()

    def stream(pooled: bool) -> None:
        nonlocal answered_after_signal
        http = httpx.Client(timeout=30) if pooled else None
        while not stop.is_set():
            try:
                if http is not None:
                    response = http.get(f"{server.url}/healthz")
                else:
                    response = httpx.get(f"{server.url}/healthz", timeout=30)
            except httpx.ConnectError:
                time.sleep(0.01)  # refused: never accepted (the listener has closed)
                continue
            except httpx.TransportError as exc:
                lost.append(repr(exc))
                continue
            if response.status_code != 200:
                lost.append(f"status {response.status_code}")
            elif signalled.is_set():
                answered_after_signal += 1
        if http is not None:
            http.close()

    with ServerProcess(
        sqlite_url, tmp_path, workers=workers, AUTHSERVER_SHUTDOWN_DRAIN="2"
    ) as server:
        assert server.process is not None
        threads = [threading.Thread(target=stream, args=(pooled,)) for pooled in (True, False) * 2]
        for thread in threads:
            thread.start()
        time.sleep(1)
        server.process.send_signal(signal.SIGTERM)
        signalled.set()
        time.sleep(0.3)
        readyz_during_drain.append(httpx.get(f"{server.url}/readyz").status_code)
        server.process.wait(timeout=30)
        stop.set()
        for thread in threads:
            thread.join()
    assert lost == []
    assert readyz_during_drain == [503]
    assert answered_after_signal > 0


def test_killed_supervisor_takes_its_workers_with_it(sqlite_url: str, tmp_path: Path) -> None:
    with ServerProcess(sqlite_url, tmp_path, workers=2) as server:
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 20
        while not port_is_free(server.port):
            assert time.monotonic() < deadline, "the workers still hold the port"
            time.sleep(0.2)
