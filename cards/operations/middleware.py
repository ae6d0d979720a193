"""Answers /healthz, /readyz and /metrics before anything else runs (docs/operations.md).

First in MIDDLEWARE: probes come from load balancers and Kubernetes with the machine's
address as Host (not in ALLOWED_HOSTS), over plain HTTP, without a session. Answering here
skips the host check, HTTPS redirects, sessions, authentication and CSRF, so a probe
costs only its own check. Every other path goes on as usual.
"""

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from cards.operations.exposition import metrics_allowed, metrics_text
from cards.operations.probes import liveness, readiness

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NO_STORE = "no-store"


def _healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse(liveness())


def _readyz(request: HttpRequest) -> HttpResponse:
    ready = readiness()
    return JsonResponse(ready.body, status=200 if ready.ok else 503)


def _metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "Forbidden: /metrics needs Authorization: Bearer <METRICS_TOKEN>, or a client "
            "address in METRICS_ALLOWED_IPS (docs/operations.md).\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(metrics_text(), content_type=PROMETHEUS_CONTENT_TYPE)


ROUTES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    HEALTH_PATH: _healthz,
    READY_PATH: _readyz,
    METRICS_PATH: _metrics,
}


def _answer(request: HttpRequest, route: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
        return response
    response = route(request)
    response["Cache-Control"] = NO_STORE
    return response


class OperationsMiddleware:
    """Answers the probes and /metrics before anything else. Sync and async: under ASGI a
    sync-only middleware would run every async view (the page's long-poll) in a thread."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        route = ROUTES.get(request.path_info.rstrip("/") or "/")
        if iscoroutinefunction(self):
            return self._acall(request, route)
        if route is None:
            return self.get_response(request)
        return _answer(request, route)

    async def _acall(self, request: HttpRequest, route) -> HttpResponse:
        if route is None:
            return await self.get_response(request)
        return await sync_to_async(_answer)(request, route)  # the probes read the database
