"""Starting loads in the background: Celery workers with a broker, else an in-process pool.

Both modes run the same task function, so they behave alike; only where it runs differs.
"""

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None


class DispatchUnavailable(Exception):
    """The broker could not take the task: live loading is unavailable for now."""


def _inprocess_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=settings.CARDS_INPROCESS_WORKERS, thread_name_prefix="card-load"
        )
    return _pool


def _run_inprocess(customer_id: int, config_ids: list[int]) -> None:
    from cards.tasks import cards_load_task

    try:
        cards_load_task.run(customer_id, config_ids)
    except Exception:
        logger.exception("In-process card load failed for customer %s", customer_id)
    finally:
        # This thread's connection must not outlive the task (Django does this per request).
        close_old_connections()


def uses_broker() -> bool:
    return bool(settings.REDIS_URL)


def dispatch_loads(*, customer_id: int, config_id_groups: Sequence[list[int]]) -> None:
    """Start one background load per group (batch), after the current transaction commits.

    Raises DispatchUnavailable when the broker refuses, so callers can say so and still
    render what is cached.
    """

    from cards.tasks import cards_load_task  # tasks import services, which import us

    def send() -> None:
        for config_ids in config_id_groups:
            if uses_broker():
                try:
                    cards_load_task.apply_async(args=(customer_id, config_ids), retry=False)
                except Exception as exc:  # kombu raises several kinds when Redis is down
                    raise DispatchUnavailable(str(exc)) from exc
            else:
                _inprocess_pool().submit(_run_inprocess, customer_id, config_ids)

    transaction.on_commit(send, robust=False)
