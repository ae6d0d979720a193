"""cards.protocol.alarms: one thread calls each function when its moment comes, in due order."""

import threading
import time

from cards.protocol.alarms import Alarms


def test_alarms_fire_in_due_order_and_an_earlier_one_added_later_is_not_kept_waiting():
    alarms = Alarms("test-alarms")
    fired: list[str] = []
    done = threading.Event()
    now = time.monotonic()
    alarms.call_at(now + 5, lambda: fired.append("late"))  # the thread sleeps for it...
    alarms.call_at(now + 0.1, lambda: fired.append("second"))
    alarms.call_at(now + 0.05, lambda: fired.append("first"))  # ...and is woken for these
    alarms.call_at(now + 0.15, done.set)
    assert done.wait(2)
    assert fired == ["first", "second"]
    assert time.monotonic() - now < 2


def test_a_failing_callback_leaves_the_alarm_thread_running_for_later_ones(caplog):
    alarms = Alarms("test-alarms-failing")
    done = threading.Event()
    now = time.monotonic()

    def failing() -> None:
        raise RuntimeError("a callback's own bug")

    alarms.call_at(now + 0.01, failing)
    alarms.call_at(now + 0.05, done.set)

    assert done.wait(2), "the alarm due after the failing one never fired"
    assert "a callback's own bug" in caplog.text
