"""@serve.batch as Ray Serve documents it: numpy results, batch_size_fn, run-time setters,
several arguments, concurrent batches and streaming (batched async generators)."""

import asyncio

import numpy as np
import pytest

from serve_core.batching import BatchSizeError, batch
from serve_core.errors import ConfigError


def run(coro):
    return asyncio.run(coro)


def test_a_numpy_array_is_a_valid_batch_result():
    class M:
        @batch(max_batch_size=4, batch_wait_timeout_s=0.01)
        async def triple(self, xs):
            return np.array(xs) * 3

    async def main():
        m = M()
        return await asyncio.gather(*(m.triple(i) for i in range(6)))

    assert [int(v) for v in run(main())] == [0, 3, 6, 9, 12, 15]


def test_a_result_of_the_wrong_length_names_the_batch():
    @batch(max_batch_size=2, batch_wait_timeout_s=0.01)
    async def f(xs):
        return {"not": "a sequence"}

    async def main():
        return await asyncio.gather(f(1), f(2), return_exceptions=True)

    assert all(isinstance(r, BatchSizeError) and "one result per input" in str(r) for r in run(main()))


def test_batch_size_fn_keeps_each_batch_within_max_batch_size():
    sizes = []

    @batch(max_batch_size=10, batch_wait_timeout_s=0.01, batch_size_fn=lambda items: sum(len(t) for t in items))
    async def lengths(texts):
        sizes.append(sum(len(t) for t in texts))
        return [len(t) for t in texts]

    async def main():
        return await asyncio.gather(*(lengths(w) for w in ["abcd", "efgh", "ijkl", "mnop", "qrst"]))

    assert run(main()) == [4] * 5
    assert sorted(sizes) == [4, 8, 8] and all(s <= 10 for s in sizes)


def test_an_item_bigger_than_the_batch_fails_alone():
    @batch(max_batch_size=3, batch_wait_timeout_s=0.01, batch_size_fn=lambda items: sum(len(i) for i in items))
    async def f(items):
        return [len(i) for i in items]

    async def main():
        return await asyncio.gather(f("toolong"), f("ok"), return_exceptions=True)

    big, small = run(main())
    assert isinstance(big, RuntimeError) and "max_batch_size" in str(big)
    assert small == 2


def test_setters_change_the_batch_size_at_run_time():
    class M:
        def __init__(self):
            self.sizes = []

        @batch(max_batch_size=4, batch_wait_timeout_s=0.01)
        async def f(self, xs):
            self.sizes.append(len(xs))
            return xs

    async def main():
        m = M()
        m.f.set_max_batch_size(2)
        m.f.set_batch_wait_timeout_s(0.02)
        await asyncio.gather(*(m.f(i) for i in range(5)))
        return m.sizes, m.f._get_max_batch_size(), m.f._get_batch_wait_timeout_s()

    sizes, size, wait = run(main())
    assert max(sizes) == 2 and sum(sizes) == 5 and (size, wait) == (2, 0.02)
    with pytest.raises(ConfigError):
        M.f.set_max_batch_size(0)


def test_each_argument_becomes_a_list():
    @batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    async def add(xs, ys, scale=None):
        return [(x + y) * s for x, y, s in zip(xs, ys, scale, strict=True)]

    async def main():
        return await asyncio.gather(add(1, 2, scale=1), add(3, 4, scale=10))

    assert run(main()) == [3, 70]


def test_concurrent_batches_overlap_up_to_the_limit():
    running = []
    peak = []

    @batch(max_batch_size=1, batch_wait_timeout_s=0, max_concurrent_batches=2)
    async def slow(xs):
        running.append(1)
        peak.append(len(running))
        await asyncio.sleep(0.01)
        running.pop()
        return xs

    async def main():
        return await asyncio.gather(*(slow(i) for i in range(4)))

    assert run(main()) == [0, 1, 2, 3]
    assert max(peak) == 2


def test_a_batched_async_generator_streams_each_caller_its_items():
    sizes = []

    class M:
        @batch(max_batch_size=4, batch_wait_timeout_s=0.01)
        async def countdown(self, starts):
            sizes.append(len(starts))
            for step in range(max(starts)):
                yield [s - step if s - step > 0 else StopIteration for s in starts]

    async def main():
        m = M()

        async def collect(s):
            return [x async for x in m.countdown(s)]

        return await asyncio.gather(*(collect(s) for s in (3, 1, 2)))

    assert run(main()) == [[3, 2, 1], [1], [2, 1]]
    assert sizes == [3]


def test_bad_settings_are_refused():
    for kwargs in ({"max_batch_size": 0}, {"batch_wait_timeout_s": -1}, {"max_concurrent_batches": 0},
                   {"batch_size_fn": 3}):
        with pytest.raises(ConfigError):
            batch(**kwargs)
    with pytest.raises(ConfigError, match="async def"):
        batch(lambda xs: xs)
