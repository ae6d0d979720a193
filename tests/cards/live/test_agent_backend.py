"""Who may use the agent pages, read with the user in one query (AgentModelBackend).

The agent check runs on every agent request; the backend reads the permission in the
user's own query, afresh each request, with Django's `with_perm` condition. These tests
hold it to `ModelBackend`'s answers: by group or by the user's own permission, never for
an inactive user, always for a superuser, at once after a change, and for sessions that
`ModelBackend` itself started.
"""

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cards.live.access import AGENT_PERMISSION, AgentModelBackend
from tests.factories import UserFactory, agent_user, agents_group

pytestmark = pytest.mark.django_db

DIRECTORY = "customers:directory"


def _agent_permission() -> Permission:
    app_label, codename = AGENT_PERMISSION.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _status(client, user) -> int:
    client.force_login(user)
    return client.get(reverse(DIRECTORY)).status_code


def test_the_agent_check_reads_no_permission_table_of_its_own(client):
    client.force_login(agent_user())
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(DIRECTORY)).status_code == 200
    permission_reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "django_content')]
    assert permission_reads == []


@pytest.mark.parametrize(
    "make, status",
    [
        (lambda: agent_user(), 200),  # through the "Agents" group
        (lambda: UserFactory(), 403),
        (lambda: UserFactory(is_superuser=True), 200),
        (lambda: UserFactory(is_staff=True), 200),
    ],
    ids=["group", "none", "superuser", "staff"],
)
def test_the_agent_pages_answer_as_model_backend_would(client, make, status):
    assert _status(client, make()) == status


def test_the_users_own_permission_counts_too(client):
    user = UserFactory()
    user.user_permissions.add(_agent_permission())
    assert AgentModelBackend().get_user(user.pk).has_perm(AGENT_PERMISSION)
    assert _status(client, user) == 200


def test_an_inactive_agent_has_no_agent_permission():
    user = agent_user()
    user.is_active = False
    user.save()
    loaded = AgentModelBackend().get_user(user.pk)
    assert loaded is None  # as ModelBackend: inactive users are not loaded at all
    assert not AgentModelBackend().has_perm(user, AGENT_PERMISSION)


def test_removing_an_agent_from_the_group_takes_effect_on_the_next_request(client):
    user = agent_user()
    assert _status(client, user) == 200
    user.groups.remove(agents_group())
    assert client.get(reverse(DIRECTORY)).status_code == 403


def test_other_permissions_take_django_s_path():
    user = agent_user()
    user.user_permissions.add(Permission.objects.get(codename="view_cardconfig"))
    loaded = AgentModelBackend().get_user(user.pk)
    assert loaded.has_perm("cards.view_cardconfig")
    assert not loaded.has_perm("cards.change_cardconfig")


def test_a_session_model_backend_started_still_works(client):
    """Sessions from before AgentModelBackend name ModelBackend: still agents."""
    user = agent_user()
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    client.cookies["sessionid"] = session.session_key
    assert client.get(reverse(DIRECTORY)).status_code == 200
