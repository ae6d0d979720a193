"""Loads nobody waits for in the request: enqueue and dispatch (Celery or in-process), the
job body both run, refresh-ahead, keep-warm pacing, claim recovery and every schedule.
Uses `cards.loading` and `cards.protocol`."""
