"""Sessions in the database, as Django's `db` engine keeps them, read in one plain statement.

Every agent request reads its session; the ORM spent more CPU compiling that one-row
lookup than the database took to answer it. Everything else is Django's: sessions stay
rows of `django_session`, so a logout (which deletes the row) ends the session in every
web process at once, and expired rows are never read.
"""

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    """Django's database session store; `load` reads the row without the ORM."""

    def load(self) -> dict:
        connection = connections[router.db_for_read(self.model)]
        quote = connection.ops.quote_name
        meta = self.model._meta
        key, data, expires = (
            quote(meta.get_field(name).column)
            for name in ("session_key", "session_data", "expire_date")
        )
        # Identifiers from the model's metadata, quoted; values are parameters.
        sql = f"SELECT {data} FROM {quote(meta.db_table)} WHERE {key} = %s AND {expires} > %s"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(
                sql, [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())]
            )
            row = cursor.fetchone()
        if row is None:
            # As Django's: a missing or expired session is a new, empty one.
            self._session_key = None
            return {}
        return self.decode(row[0])
