from django.urls import path
from django.views.generic import RedirectView

from config import converters  # noqa: F401 (registers <id:...>)
from customers import views

app_name = "customers"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="customers:directory"), name="home"),
    path("customers/", views.customer_directory, name="directory"),
    path("customers/lookup/", views.customer_lookup_link, name="lookup"),
    path("customers/<id:pk>/", views.customer_detail, name="detail"),
]
