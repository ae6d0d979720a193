"""The ASGI entry point (the production layout: uvicorn, `Procfile`; README "Production").

One process serves two kinds of request, each the cheapest way Django offers:

- **Async views** (the page's long-poll for its cards, `cards.live.views.card_updates`,
  and `card_fragment`) go through Django's `ASGIHandler`, without the per-request
  `ThreadSensitiveContext` Django would give them: a context owns a thread until the
  request ends, so a thousand pages waiting on the store bell would hold a thousand idle
  threads. Their short sync parts take turns on Django's one shared sync thread and the
  wait's own database threads; the wait itself holds no thread (SPEC §7 "Isolation").
- **Every other request** (pages, admin, the card APIs' callers) is an ordinary sync view:
  it goes to Django's `WSGIHandler` on a pool of `WEB_THREADS` threads through a2wsgi,
  as a gthread server would run it. Under `ASGIHandler` the same view would cross between
  the event loop and a thread twice per middleware and once more per signal: a view
  that only answers "ok" cost 4.9 ms of CPU that way and 1.3 ms this way, a cached
  customer page 18 and 12.7 ms (bench/README.md, B9). Pool threads live on, so their
  database connections are reused (`CONN_MAX_AGE`).
"""

import os

import django
from a2wsgi import WSGIMiddleware
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.urls import Resolver404, get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")


class CardsASGIHandler(ASGIHandler):
    """Async views on Django's `ASGIHandler` (no thread per request), the rest on its
    `WSGIHandler` in a thread pool."""

    def __init__(self) -> None:
        super().__init__()
        self.sync_views = WSGIMiddleware(WSGIHandler(), workers=settings.WEB_THREADS)

    def _serves_async_view(self, scope: dict) -> bool:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return False
        return iscoroutinefunction(match.func)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            # At startup, the store bell's relay connects (no page waits for it later).
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    from cards.loading.bell import listening

                    await sync_to_async(listening)()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
        elif self._serves_async_view(scope):
            await self.handle(scope, receive, send)
        else:
            await self.sync_views(scope, receive, send)


django.setup(set_prefix=False)
application = CardsASGIHandler()
