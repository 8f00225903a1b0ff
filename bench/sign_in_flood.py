"""Wrong sign-ins at a steady rate, each from a new address: ``sign_in_flood.py URL SECONDS RATE``.

The server must trust loopback as a proxy (``trusted_proxies = ["127.0.0.1/32"]``):
each attempt names a new source in ``X-Forwarded-For`` and a new e-mail, so no
per-source or per-address throttle ever applies — a distributed flood. 64
threads share the rate; each fetches the sign-in form once for its CSRF cookie
and token. Prints how many attempts were sent, and how many answered 401 and 429.
"""

from __future__ import annotations

import re
import sys
import threading
import time

import httpx

THREADS = 64  # enough that slow answers do not lower the rate sent
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def main() -> None:
    url, seconds, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    end = time.monotonic() + seconds
    counts: dict[str, int] = {"sent": 0, "401": 0, "429": 0}
    lock = threading.Lock()

    def worker(k: int) -> None:
        n = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            found = CSRF.search(http.get("/ui/").text)
            assert found, "the sign-in page has no CSRF token"
            token = found.group(1)
            while time.monotonic() < end:
                started = time.monotonic()
                address = f"10.{k}.{n // 250 % 250}.{n % 250 + 1}"
                response = http.post(
                    "/ui/login/password",
                    data={
                        "csrf_token": token,
                        "email": f"guess-{k}-{n}@example.com",
                        "password": f"wrong password number {n}",
                    },
                    headers={"X-Forwarded-For": address},
                )
                n += 1
                with lock:
                    counts["sent"] += 1
                    key = str(response.status_code)
                    counts[key] = counts.get(key, 0) + 1
                time.sleep(max(0.0, THREADS / rate - (time.monotonic() - started)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(counts["sent"], counts["401"], counts["429"])


if __name__ == "__main__":
    main()
