"""A Content-Security-Policy for every page, admin included (SPEC §8): scripts and styles
only from our own origin, never inline, nothing remote, no plugins, no framing.

Django's admin (5.2) has no inline script or style of its own, and ours add none, so the
admin gets the same policy: the preview puts card API content into admin pages, and a
policy is the second line behind escaping (tests/browser/test_admin_csp.py checks the
pages in Chromium, which reports every violation)."""

from collections.abc import Callable

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
    policy keeps it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
