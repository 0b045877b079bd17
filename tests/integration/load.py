"""A small open-loop load for fault tests: requests start on a fixed schedule, each
on its own, so a stall shows up as errors and latency instead of fewer requests.

aiohttp, not httpx: httpcore 1.0.9's pool leaks a slot for every request cancelled while its
new connection is still opening (encode/httpcore#1093), and once the slots are gone requests
wait forever on a lock with no timeout; the fault tests saw hundreds "unanswered" that the
server had never received."""

import asyncio
import threading
import time
from dataclasses import dataclass, field

import aiohttp


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

    async def _one(self, client: aiohttp.ClientSession, intended: float) -> None:
        try:
            async with client.request(self.method, self.url, timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as r:
                if r.status == 200:
                    self.result.pids.add(await r.json())
                    self.result.ok += 1
                else:
                    self.result.failed.append((round(intended, 3), r.status, (await r.text())[:300]))
        except Exception as e:
            self.result.failed.append((round(intended, 3), type(e).__name__, str(e)[:300]))

    async def _main(self) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as client:
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
