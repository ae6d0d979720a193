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
