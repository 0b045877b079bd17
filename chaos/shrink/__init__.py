"""From a failed run to the smallest schedule that still fails: pinning and judging schedules
(schedule.py), delta debugging (search.py), and the replays that drive it (shrink.py)."""
