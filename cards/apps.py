from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Cards"

    def ready(self) -> None:
        # Registers the Celery tasks in every process, not only in workers (which import
        # them through autodiscovery): the embedded mode runs the load task's own function
        # (cards.background.dispatch), found by name.
        from django.conf import settings

        from cards import checks, tasks  # noqa: F401

        if not settings.REDIS_URL:
            # Embedded mode: SIGTERM ends the process through its exit hooks, which cancel
            # the queued in-process loads and release their claims.
            from cards.background.dispatch import install_sigterm_exit

            install_sigterm_exit()
