from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Cards"

    def ready(self) -> None:
        # Registers the Celery tasks: the in-process pool (cards.background.dispatch) runs
        # them by name, and without a worker nothing else imports this module.
        from cards import checks, tasks  # noqa: F401
