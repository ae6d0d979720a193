from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

admin.site.site_header = "Customer Cards"
admin.site.site_title = "Customer Cards admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("customers.urls")),
    path("", include("cards.urls")),
]
# Static files under gunicorn in development (`make services`); empty unless DEBUG.
urlpatterns += staticfiles_urlpatterns()
