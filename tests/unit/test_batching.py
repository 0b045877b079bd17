import asyncio

import pytest

from serve_core.batching import batch
from serve_core.errors import ConfigError


class Model:
    def __init__(self):
        self.sizes = []

    @batch(max_batch_size=4, batch_wait_timeout_s=0.05)
    async def double(self, xs):
        self.sizes.append(len(xs))
        return [x * 2 for x in xs]


def test_calls_are_grouped_and_answered_individually():
    async def main():
        m = Model()
        out = await asyncio.gather(*(m.double(i) for i in range(10)))
        return m, out

    m, out = asyncio.run(main())
    assert out == [i * 2 for i in range(10)]
    assert max(m.sizes) == 4 and sum(m.sizes) == 10


def test_wrong_result_length_fails_every_caller():
    class Bad:
        @batch(max_batch_size=2, batch_wait_timeout_s=0.01)
        async def f(self, xs):
            return xs + [0]

    async def main():
        b = Bad()
        return await asyncio.gather(b.f(1), b.f(2), return_exceptions=True)

    res = asyncio.run(main())
    assert all(isinstance(r, TypeError) and "one result per input" in str(r) for r in res)


def test_function_batching():
    seen = []

    @batch(max_batch_size=3, batch_wait_timeout_s=0.05)
    async def square(xs):
        seen.append(len(xs))
        return [x * x for x in xs]

    async def main():
        return await asyncio.gather(*(square(i) for i in range(6)))

    assert asyncio.run(main()) == [0, 1, 4, 9, 16, 25]
    assert max(seen) == 3


def test_bad_batch_options():
    with pytest.raises(ConfigError):
        batch(max_batch_size=0)
    with pytest.raises(ConfigError):
        batch(batch_wait_timeout_s=-1)
    with pytest.raises(ConfigError):
        batch(lambda xs: xs)
