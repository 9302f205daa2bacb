"""in_parallel: independent steps on driver threads; every step ends before a failure is raised."""

import threading
import time

import pytest

from lakehouse.jobs.runtime import in_parallel


def test_steps_run_side_by_side_and_all_end_before_the_first_failure_is_raised():
    both_started = threading.Barrier(2, timeout=10)  # only passes when two steps run at once
    done = []

    def fails():
        both_started.wait()
        raise ValueError("first")

    def slow():
        both_started.wait()
        time.sleep(0.2)
        done.append("slow")

    with pytest.raises(ValueError, match="first"):
        in_parallel({"fails": fails, "slow": slow, "late": lambda: done.append("late")}, threads=2)
    assert sorted(done) == ["late", "slow"]


def test_one_thread_runs_the_steps_in_order_and_stops_at_a_failure():
    done = []

    def fails():
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        in_parallel({"a": lambda: done.append("a"), "b": fails, "c": lambda: done.append("c")}, threads=1)
    assert done == ["a"]
