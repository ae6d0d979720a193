from django.apps import AppConfig


class CardsConfig(AppConfig):
    name = "cards"
    verbose_name = "Cards"

    def ready(self) -> None:
        # Registers the Celery tasks in every process, not only in workers (whose Celery
        # autodiscovers them): the in-process pool runs `cards.cards_load` by name too
        # (cards.background.dispatch), so a web process without a broker needs it registered.
        from cards import tasks  # noqa: F401
