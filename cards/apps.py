from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Cards"

    def ready(self) -> None:
        # Registers the Celery tasks in every process, not only in workers (which import
        # them through autodiscovery): the embedded mode runs the load task's own function
        # (cards.background.dispatch), found by name.
        from cards import tasks  # noqa: F401
