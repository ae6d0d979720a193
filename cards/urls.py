from django.urls import path

from cards.integrator import views as integrator_views
from cards.integrator.example_api import example_cards_view
from cards.live import views
from config import converters  # noqa: F401 (registers <id:...>)

app_name = "cards"
urlpatterns = [
    # The view itself answers 404 unless CARDS_EXAMPLE_API_ENABLED (checked per request,
    # so tests can switch it with override_settings).
    path("examples/cards/", example_cards_view, name="example-api"),
    # Agent card views (SPEC §7). Reload-all comes first: it also answers GET for a card
    # whose key is "reload".
    path("customers/<id:pk>/cards/reload/", views.cards_reload_all, name="cards-reload"),
    # The page's one long-poll for its cards (outside cards/<key>/: any key is valid there).
    path("customers/<id:pk>/card-updates/", views.card_updates, name="updates"),
    path("customers/<id:pk>/cards/<cardkey:key>/", views.card_fragment, name="card"),
    # By config id, which survives a key rename while a page is open.
    path("customers/<id:pk>/card-reload/<id:config_id>/", views.card_reload, name="card-reload"),
    # Integrator tools: the public JSON Schema, the staff playground and config preview.
    path(
        "schema/card-response.json",
        integrator_views.card_response_schema,
        name="schema",
    ),
    path("playground/", integrator_views.playground, name="playground"),
    path("playground/check/", integrator_views.playground_check, name="playground-check"),
    path("preview/", integrator_views.card_preview, name="preview"),
]
