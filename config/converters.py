"""URL converters for values every database can look up; importing registers them.

`<id:...>`: `<int:...>` takes any number of digits, and SQLite refuses integers past 64
bits with an OverflowError (a 500); this matches 1 to 18 ASCII digits (below 2**63), so a
longer id is a plain 404. `<cardkey:...>`: `<str:...>` without NUL, which PostgreSQL
refuses in any string, so a key holding one is a 404 too.
"""

from django.urls import register_converter


class DatabaseIdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(DatabaseIdConverter, "id")


class CardKeyConverter:
    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(CardKeyConverter, "cardkey")
