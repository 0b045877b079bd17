"""The autoscaling policy stepped tick by tick with a fake clock."""

from serve_core.config import AutoscalingConfig
from serve_core.control.autoscaler import AutoscalerState, decide


def cfg(**kw):
    base = dict(min_replicas=0, max_replicas=5, target_ongoing_requests=2, upscale_delay_s=3,
                downscale_delay_s=10, look_back_period_s=2, metrics_interval_s=1)
    return AutoscalingConfig(**{**base, **kw})


def run(c, state, current, demand, start, seconds, step=0.5):
    """Feed constant demand for `seconds`; return (time, replicas) after each tick."""
    t, out = start, []
    while t < start + seconds:
        state.record(t, demand, c.look_back_period_s)
        current = decide(c, current, state, t).desired
        out.append((t, current))
        t += step
    return current, out


def test_scale_up_waits_for_upscale_delay():
    c, s = cfg(), AutoscalerState(created_at=0)
    current, trace = run(c, s, 1, 3.9, 0, 2.9)  # needs 2 replicas, but not for 3 s yet
    assert current == 1
    current, trace = run(c, s, current, 3.9, 3.0, 1.0)
    assert current == 2


def test_panic_scales_at_once():
    c, s = cfg(upscale_delay_s=60), AutoscalerState(created_at=0)
    current, _ = run(c, s, 1, 9, 0, 0.5)  # 9 ongoing for 1 replica at target 2: 4.5x
    assert current == 5  # ceil(9 / 2) = 5, capped at max_replicas


def test_scale_down_after_delay_and_not_during_panic():
    c, s = cfg(), AutoscalerState(created_at=-100)
    current, _ = run(c, s, 1, 20, 0, 0.5)  # panic up to 5
    assert current == 5
    current, _ = run(c, s, current, 2, 1, 20)  # low demand, but within the panic window
    assert current == 5
    current, _ = run(c, s, current, 2, 40, 12)
    assert current == 1


def test_scale_to_zero_and_back():
    c, s = cfg(downscale_delay_s=5, downscale_to_zero_delay_s=8), AutoscalerState(created_at=-100)
    current, trace = run(c, s, 1, 0, 0, 7.5)
    assert current == 1  # not idle long enough
    current, trace = run(c, s, current, 0, 7.5, 2)
    assert current == 0
    current, trace = run(c, s, current, 1, 10, 0.5)  # a request arrives: no delay from zero
    assert current == 1


def test_restarted_controller_does_not_scale_down_on_lost_history():
    c = cfg(look_back_period_s=30, downscale_delay_s=0)
    s = AutoscalerState(created_at=100)  # the controller (re)started at t=100
    current, _ = run(c, s, 4, 0.5, 100, 20)
    assert current == 4  # younger than the look-back window: keep what runs
    current, _ = run(c, s, current, 0.5, 130, 2)
    assert current < 4


def test_bounds_are_respected():
    c, s = cfg(min_replicas=2, max_replicas=3, upscale_delay_s=0), AutoscalerState(created_at=-100)
    current, _ = run(c, s, 2, 100, 0, 3)
    assert current == 3
    current, _ = run(c, s, current, 0, 100, 60)
    assert current == 2


def test_fast_path_settings_default_to_the_constants():
    from serve_core.control.autoscaler import PANIC_THRESHOLD, PANIC_WINDOW_S

    c = AutoscalingConfig()
    assert (c.panic_threshold, c.panic_window_s) == (PANIC_THRESHOLD, PANIC_WINDOW_S)


def test_fast_path_threshold_and_window_come_from_the_config():
    c, s = cfg(upscale_delay_s=60, panic_threshold=5), AutoscalerState(created_at=0)
    current, _ = run(c, s, 1, 9, 0, 0.5)  # 4.5x is under a threshold of 5: no fast path
    assert current == 1
    c, s = cfg(panic_window_s=2), AutoscalerState(created_at=-100)
    current, _ = run(c, s, 1, 20, 0, 0.5)  # panic up to 5
    assert current == 5
    current, _ = run(c, s, current, 2, 1, 12.5)  # the 2 s window is over: down after downscale_delay_s
    assert current == 1


def test_fast_path_threshold_must_be_above_one():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="panic_threshold"):
        AutoscalingConfig(panic_threshold=1)
