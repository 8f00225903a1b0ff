"""Where a token request's CPU goes in the whole ``serve --workers 1`` process.

Runs the token load (or ``--scenario introspection``) against one worker for
``--duration`` seconds and reports, per request:

- the CPU of each thread of the process (from ``/proc/<pid>/task``), user and kernel;
- with ``--perf``, the process's samples split by shared object (``perf record``:
  the kernel, the interpreter, uvloop/libuv, httptools, OpenSSL, libc...) and the
  hottest native symbols;
- with ``--py-spy``, a py-spy profile (Python frames; idle threads left out) of
  the same load, its frames grouped into the HTTP server, the event loop, logging,
  Starlette, Authlib,
  our code and the rest (each sample counted once, for its innermost known frame).

Usage: ``.venv/bin/python bench/account.py --perf --py-spy`` (perf from Debian's
``linux-perf``; py-spy comes with the bench extras: ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import run  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")

# Innermost frame first: the first group whose pattern a frame's file matches names the sample.
GROUPS = [
    ("logging", ("(logging/",)),
    ("HTTP server (uvicorn, httptools)", ("(uvicorn/", "(httptools/")),
    ("event loop (uvloop, asyncio, anyio)", ("(uvloop/", "(asyncio/", "(anyio/")),
    ("Starlette", ("(starlette/",)),
    ("Authlib", ("(authlib/",)),
    ("prometheus-client", ("(prometheus_client/",)),
    ("SQLAlchemy", ("(sqlalchemy/",)),
    ("our code", ("(authserver/",)),
]


def threads(pid: int) -> dict[str, tuple[float, float]]:
    """CPU seconds (user, kernel) of each thread of ``pid``, by name and id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        key = f"{name} {task.name}" if task.name != str(pid) else f"{name} (main)"
        out[key] = (int(fields[11]) / TICK, int(fields[12]) / TICK)
    return out


def perf_split(data: Path) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    def report(sort: str) -> list[tuple[float, str]]:
        text = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = []
        for row in text.splitlines():
            parts = row.split(None, 1)
            if len(parts) == 2 and parts[0].endswith("%"):
                rows.append((float(parts[0].rstrip("%")), parts[1].strip()))
        return rows

    return report("dso"), report("dso,sym")[:25]


def group_of(frame: str) -> str | None:
    for name, patterns in GROUPS:
        if any(pattern in frame for pattern in patterns):
            return name
    return None


def py_spy_split(collapsed: Path) -> collections.Counter[str]:
    """Samples by group, each attributed to its innermost frame with a known group; native
    frames under a Python frame count for that frame's group (OpenSSL under our signer)."""
    counts: collections.Counter[str] = collections.Counter()
    for row in collapsed.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0]
        name = None
        for frame in reversed(frames[1:]):
            name = group_of(frame)
            if name:
                break
        if name is None:
            name = "other: " + (frames[-1][:60] if len(frames) > 1 else thread)
        if "MainThread" not in stack:
            name = f"other threads: {name}"
        counts[name] += int(count)
    return counts


def leaves(collapsed: Path) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for row in collapsed.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        counts[stack.split(";")[-1]] += int(count)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--credentials", type=int, default=100)
    parser.add_argument("--scenario", choices=["token", "introspection"], default="token")
    parser.add_argument("--perf", action="store_true")
    parser.add_argument("--py-spy", action="store_true")
    parser.add_argument("--python", default=sys.executable, help="the server's interpreter")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authserver-account-") as name:
        folder = Path(name)
        url_db = f"sqlite:///{folder}/account.db"
        pairs = run.seed(url_db, args.credentials, 10)
        with run.authserver(url_db, python=args.python) as server:
            tokens = run.first_tokens(server.url, "/auth/v1/token", pairs)
            if args.scenario == "token":
                script = run.lua_script(
                    folder, "token", run.token_requests("/auth/v1/token", pairs)
                )
            else:
                script = run.lua_script(
                    folder,
                    "introspect",
                    run.introspection_requests("/auth/v1/introspect", pairs, tokens),
                )
            run.warm_up(server.url, script, args.connections, 2)
            before = threads(server.pid)
            result = run.wrk(server.url, script, args.connections, args.duration)
            after = threads(server.pid)
            count = result["requests"]
            print(
                f"{args.scenario}: {result['rps']:.0f} req/s, {count:.0f} requests, "
                f"p99 {result['p99_ms']:.1f} ms"
            )
            print("CPU per request by thread (user + kernel, us)")
            total_user = total_sys = 0.0
            for key, (user, kernel) in sorted(after.items()):
                u = (user - before.get(key, (0, 0))[0]) / count * 1e6
                k = (kernel - before.get(key, (0, 0))[1]) / count * 1e6
                total_user, total_sys = total_user + u, total_sys + k
                if u + k >= 0.5:
                    print(f"  {key:<28} {u:7.1f} + {k:6.1f}")
            total = total_user + total_sys
            print(f"  {'all':<28} {total_user:7.1f} + {total_sys:6.1f} = {total:.1f}")
            if args.perf:
                data = folder / "perf.data"
                recorder = subprocess.Popen(
                    ["perf", "record", "-q", "-F", "999", "-p", str(server.pid), "-o", str(data)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                run.wrk(server.url, script, args.connections, args.duration)
                recorder.terminate()
                recorder.wait()
                dsos, symbols = perf_split(data)
                print("perf: samples by shared object (%)")
                for share, dso in dsos:
                    if share >= 0.3:
                        print(f"  {share:5.1f}  {dso}")
                print("perf: hottest symbols (%)")
                for share, sym in symbols:
                    print(f"  {share:5.1f}  {sym}")
            if args.py_spy:
                collapsed = folder / "py-spy.txt"
                spy = [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--nonblocking",
                    "--threads",
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--duration",
                    str(args.duration),
                    "--pid",
                    str(server.pid),
                    "-o",
                    str(collapsed),
                ]
                recorder_thread = threading.Thread(
                    target=subprocess.run,
                    args=(spy,),
                    kwargs={"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL},
                )
                recorder_thread.start()
                run.wrk(server.url, script, args.connections, args.duration + 1)
                recorder_thread.join()
                counts = py_spy_split(collapsed)
                total = sum(counts.values())
                print(f"py-spy: {total} samples, by innermost known frame (%)")
                for group, n in counts.most_common(30):
                    print(f"  {n / total * 100:5.1f}  {group}")
                print("py-spy: hottest innermost frames (%)")
                for frame, n in leaves(collapsed).most_common(25):
                    print(f"  {n / total * 100:5.1f}  {frame}")


if __name__ == "__main__":
    main()
