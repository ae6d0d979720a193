from django.urls import path

from cards import example_api

app_name = "cards"
urlpatterns = [
    # The view itself answers 404 unless CARDS_EXAMPLE_API_ENABLED (checked per request,
    # so tests can switch it with override_settings).
    path("examples/cards/", example_api.example_cards_view, name="example-api"),
]
