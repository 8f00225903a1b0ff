"""Send wrong client secrets at a steady rate: ``flood.py URL ID[,ID…] SECONDS RATE``.

Eight threads share the rate; each guess is new, so none is answered from the
rejected-secret cache. Prints how many requests were sent and how many of them
were throttled (429).
"""

from __future__ import annotations

import sys
import threading
import time

import httpx

THREADS = 8


def main() -> None:
    url, ids, seconds, rate = (
        sys.argv[1],
        sys.argv[2].split(","),
        float(sys.argv[3]),
        float(sys.argv[4]),
    )
    end = time.monotonic() + seconds
    sent: list[int] = []
    throttled: list[int] = []

    def worker(k: int) -> None:
        n = refused = 0
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < end:
                started = time.monotonic()
                response = http.post(
                    url,
                    data={"grant_type": "client_credentials"},
                    auth=(ids[(k + n) % len(ids)], f"guess-{k}-{n}"),
                )
                n += 1
                refused += response.status_code == 429
                time.sleep(max(0.0, THREADS / rate - (time.monotonic() - started)))
        sent.append(n)
        throttled.append(refused)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(sent), sum(throttled))


if __name__ == "__main__":
    main()
