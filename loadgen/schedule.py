"""From a load profile to intended start times: deterministic, pure (a trace file is the only I/O).

For a rate r(t) with integral R(t), request k (k = 0, 1, ...) starts at the earliest time R
passes k, and the run has every k below R(duration): ceil(R(duration)) requests. So a constant
100/s for 12 s is 1200 requests at 0.00, 0.01, ..., 11.99, and a rate that starts at zero
sends its first request when the rate turns positive. A trace is replayed as recorded, shifted
to start at 0, divided by ``speedup`` and cut at ``duration_s``.

Workers share a schedule by striding: worker i of N takes starts i, i+N, i+2N, ..., so the N
shards together are exactly the schedule, each spread over the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadgen.errors import ProfileError
from loadgen.profile import Constant, Diurnal, LoadProfile, Ramp, Spike, Step, Trace
from loadgen.trace import read_trace

MAX_REQUESTS = 20_000_000  # about 160 MB of floats: beyond that a profile is surely a typo
_EPS = 1e-9  # R(duration) computed as 1200.0000000001 is still 1200 requests


@dataclass(frozen=True)
class Schedule:
    """Intended start offsets in seconds from the run's start, ascending."""

    offsets: list[float]
    duration_s: float

    def __len__(self) -> int:
        return len(self.offsets)

    def shard(self, index: int, count: int) -> list[tuple[int, float]]:
        """(sequence number in the whole schedule, offset) for worker ``index`` of ``count``."""
        check_shard(index, count)
        return [(seq, self.offsets[seq]) for seq in range(index, len(self.offsets), count)]


def check_shard(index: int, count: int) -> None:
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index}/{count} does not exist: need count >= 1 and 0 <= index < count")


@dataclass(frozen=True)
class _Segment:
    """A stretch where the rate moves linearly from ``r0`` to ``r1`` (constant when equal)."""

    start: float
    end: float
    r0: float
    r1: float

    @property
    def integral(self) -> float:
        return (self.r0 + self.r1) / 2 * (self.end - self.start)

    def time_of(self, x: float) -> float:
        """The time within the segment where the integral from its start reaches ``x``."""
        length = self.end - self.start
        slope = (self.r1 - self.r0) / length
        if slope == 0:
            return self.start + x / self.r0
        # slope/2 tau^2 + r0 tau - x = 0, in the form that stays exact when slope is tiny
        root = math.sqrt(max(self.r0 * self.r0 + 2 * slope * x, 0.0))
        denominator = self.r0 + root
        tau = 2 * x / denominator if denominator > 0 else 0.0
        return min(self.start + tau, self.end)


def segments(profile: LoadProfile) -> list[_Segment]:
    """The piecewise-linear rate of every profile except Diurnal and Trace."""
    match profile:
        case Constant(rate=r, duration_s=d):
            return [_Segment(0.0, d, r, r)]
        case Step(rate=r, to_rate=r2, at_s=at, duration_s=d):
            return [_Segment(0.0, at, r, r), _Segment(at, d, r2, r2)]
        case Spike(rate=r, spike_rate=sr, at_s=at, spike_s=s, duration_s=d):
            return [_Segment(0.0, at, r, r), _Segment(at, at + s, sr, sr), _Segment(at + s, d, r, r)]
        case Ramp(rate=r, to_rate=r2, duration_s=d):
            return [_Segment(0.0, d, r, r2)]
    raise TypeError(f"{type(profile).__name__} is not piecewise linear")


def rate_integral(profile: LoadProfile, t: float) -> float:
    """R(t): requests the profile intends by time ``t`` (not for Trace)."""
    if isinstance(profile, Diurnal):
        return _diurnal_integral(profile, t)
    total = 0.0
    for seg in segments(profile):
        if t <= seg.start:
            break
        if t >= seg.end:
            total += seg.integral
        else:
            part = _Segment(seg.start, t, seg.r0, seg.r0 + (seg.r1 - seg.r0) * (t - seg.start) / (seg.end - seg.start))
            total += part.integral
    return total


def expected_count(integral: float) -> int:
    """Requests in a run whose rate integrates to ``integral``: every k with k < integral."""
    return max(0, math.ceil(integral - _EPS * max(1.0, integral)))


def build_schedule(profile: LoadProfile) -> Schedule:
    """The intended start offsets of ``profile``. Raises ProfileError or TraceError."""
    if isinstance(profile, Trace):
        return _trace_schedule(profile)
    count = expected_count(rate_integral(profile, profile.duration_s))
    if count > MAX_REQUESTS:
        raise ProfileError(profile.kind, [f"the profile asks for {count} requests, more than {MAX_REQUESTS}; "
                                          "lower the rate or the duration, or split the run"])
    if isinstance(profile, Diurnal):
        offsets = _invert_smooth(
            lambda t: _diurnal_integral(profile, t), lambda t: _diurnal_rate(profile, t), count, profile.duration_s
        )
    else:
        offsets = _invert_segments(segments(profile), count)
    _check_not_empty(profile.kind, offsets)
    return Schedule(offsets, profile.duration_s)


def _check_not_empty(source: str, offsets: list[float]) -> None:
    if not offsets:
        raise ProfileError(source, ["the profile sends no requests; give it a positive rate (or a longer duration_s)"])


def _invert_segments(segs: Sequence[_Segment], count: int) -> list[float]:
    offsets: list[float] = []
    done = 0.0  # the integral up to the current segment's start
    k = 0
    for seg in segs:
        top = done + seg.integral
        while k < count and k < top - _EPS * max(1.0, top):
            offsets.append(seg.time_of(k - done))
            k += 1
        done = top
    # rounding can leave the last request or two: they belong at the end of the rate
    last = next((s for s in reversed(segs) if s.integral > 0), segs[-1])
    while k < count:
        offsets.append(last.time_of(min(k - (done - last.integral), last.integral)))
        k += 1
    return offsets


def _diurnal_rate(p: Diurnal, t: float) -> float:
    return p.mean_rate + p.amplitude * math.sin(2 * math.pi * t / p.period_s)


def _diurnal_integral(p: Diurnal, t: float) -> float:
    return p.mean_rate * t + p.amplitude * p.period_s / (2 * math.pi) * (1 - math.cos(2 * math.pi * t / p.period_s))


def _invert_smooth(integral: Callable[[float], float], rate: Callable[[float], float], count: int,
                   end: float) -> list[float]:
    """Newton's method kept inside a bracket: R is non-decreasing, so each start lies between
    the previous one and the end."""
    offsets: list[float] = []
    lo_start = 0.0
    for k in range(count):
        lo, hi = lo_start, end
        r = rate(lo)
        t = lo + (k - integral(lo)) / r if r > 0 else (lo + hi) / 2
        for _ in range(200):
            if not lo < t < hi:
                t = (lo + hi) / 2
            f = integral(t) - k
            if f < 0:
                lo = t
            else:
                hi = t
            if hi - lo < 1e-12 or abs(f) < 1e-12:
                break
            r = rate(t)
            t = t - f / r if r > 0 else (lo + hi) / 2
        t = min(max(t, lo_start), end)
        offsets.append(t)
        lo_start = t
    return offsets


def _trace_schedule(p: Trace) -> Schedule:
    times = read_trace(p.path)
    first = times[0]
    offsets = [(t - first) / p.speedup for t in times]
    if p.duration_s is not None:
        offsets = [o for o in offsets if o < p.duration_s]
    if len(offsets) > MAX_REQUESTS:
        raise ProfileError(p.path, [f"the trace holds {len(offsets)} requests, more than {MAX_REQUESTS}; "
                                    "cut it with duration_s"])
    _check_not_empty(p.path, offsets)
    duration = p.duration_s if p.duration_s is not None else (offsets[-1] if offsets else 0.0)
    return Schedule(offsets, duration)
