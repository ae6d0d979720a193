"""A Content-Security-Policy for agent pages (SPEC §8): no inline script or style."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Sends `CONTENT_SECURITY_POLICY` with every response outside the admin.

    Django's admin uses inline scripts and styles of its own, so it keeps its behaviour;
    a response that already carries a policy keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self._admin_prefix: str | None = None

    def _is_admin(self, request: HttpRequest) -> bool:
        if self._admin_prefix is None:
            # Resolved on first use: URLconf is not ready when middleware is built.
            self._admin_prefix = reverse("admin:index")
        return request.path.startswith(self._admin_prefix)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not self._is_admin(request):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
