from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Cards"

    def ready(self) -> None:
        # Registers the Celery tasks in every process, not only in workers (where Celery's
        # autodiscovery imports them): the in-process transport runs them by name.
        from cards import tasks  # noqa: F401
