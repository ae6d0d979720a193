"""A Content-Security-Policy for every page, admin included (SPEC §8): scripts and styles
only from our own origin, never inline, nothing remote, no plugins, no framing.

Django's admin (5.2) has no inline script or style of its own, and ours add none, so the
admin gets the same policy: the preview puts card API content into admin pages, and a
policy is the second line behind escaping (tests/browser/test_admin_csp.py checks the
pages in Chromium, which reports every violation)."""

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

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
    """Sends `CONTENT_SECURITY_POLICY` with every response; one that already carries a
    policy keeps it.

    Sync and async: under ASGI a sync-only middleware would make Django run every async
    view (the page's long-poll) inside a sync thread for its whole wait.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._with_policy(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._with_policy(await self.get_response(request))

    def _with_policy(self, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
