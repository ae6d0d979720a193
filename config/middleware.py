"""A Content-Security-Policy for agent pages (SPEC §8): no inline script or style."""

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
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

    Sync and async: under ASGI a sync-only middleware would make Django run every async
    view (the page's long-poll) inside a sync thread for its whole wait.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self._admin_prefix: str | None = None
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _is_admin(self, request: HttpRequest) -> bool:
        if self._admin_prefix is None:
            # Resolved on first use: URLconf is not ready when middleware is built.
            self._admin_prefix = reverse("admin:index")
        return request.path.startswith(self._admin_prefix)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._with_policy(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._with_policy(request, await self.get_response(request))

    def _with_policy(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not self._is_admin(request):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
