"""The ASGI entry point (the production layout: uvicorn, `Procfile`; README "Production").

Django's own ASGI handler, with one change for async views (the page's long-poll for its
cards, `cards.live.views.card_updates`, and `card_fragment`): Django runs each request in a
`ThreadSensitiveContext`, which gives the request a thread of its own for its sync parts
(middleware, `sync_to_async`) that lives until the request ends, so a thousand pages
waiting on the store bell would still hold a thousand idle threads. Requests for async
views run without it: their short sync parts (the session and user reads, the wait's reads
and the rendering) take turns on the process's one shared sync thread, and their waits
hold no thread at all (SPEC §7 "Isolation"). Every other request is served exactly as
Django serves it.
"""

import os

import django
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
# Under ASGI, Django keeps a request's connections in the request's own context: kept open
# after it (CONN_MAX_AGE > 0), nothing would reuse them. Each request closes its own, as
# Django advises; the waiting pages' reads keep theirs (cards.live.waiting.run_sync).
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")


class CardsASGIHandler(ASGIHandler):
    """`ASGIHandler`, with async views served without a thread per request."""

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
        if scope["type"] == "http" and self._serves_async_view(scope):
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


django.setup(set_prefix=False)
application = CardsASGIHandler()
