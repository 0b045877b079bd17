"""A small open-loop load for fault tests: requests start on a fixed schedule, each
on its own, so a stall shows up as errors and latency instead of fewer requests."""

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: list = field(default_factory=list)  # (intended start, status or error)
    pids: set = field(default_factory=set)


class OpenLoop:
    def __init__(self, url: str, rate: float, timeout_s: float = 5.0, method: str = "GET") -> None:
        self.url, self.rate, self.timeout_s, self.method = url, rate, timeout_s, method
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> "OpenLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    async def _one(self, client: httpx.AsyncClient, intended: float) -> None:
        try:
            r = await client.request(self.method, self.url, timeout=self.timeout_s)
            if r.status_code == 200:
                self.result.ok += 1
                self.result.pids.add(r.json())
            else:
                self.result.failed.append((round(intended, 3), r.status_code, r.text[:300]))
        except Exception as e:
            self.result.failed.append((round(intended, 3), type(e).__name__, str(e)[:300]))

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits) as client:
            start = time.monotonic()
            tasks = set()
            n = 0
            while not self._stop.is_set():
                intended = start + n / self.rate
                delay = intended - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                t = asyncio.ensure_future(self._one(client, intended))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                n += 1
                self.result.sent = n
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout_s + 1)
            for t in list(tasks):  # still unanswered: that is a failure, not a skip
                t.cancel()
                self.result.failed.append((None, "unanswered", ""))
