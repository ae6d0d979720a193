"""The agent check is remembered (cards.live.access): an agent's next pages read no
permissions, and every kind of permission change is seen by the very next request."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import UserFactory, agent_user

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def directory(client: Client) -> int:
    return client.get(reverse("customers:directory")).status_code


def agent_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="cards", codename="use_agent_pages")


def test_an_agents_next_pages_read_no_permissions():
    client = logged_in(agent_user("kim"))
    assert directory(client) == 200

    with CaptureQueriesContext(connection) as queries:
        assert directory(client) == 200

    assert not [q["sql"] for q in queries if "auth_permission" in q["sql"]]
    # The user's row is still read: whether they are active is never remembered.
    assert [q["sql"] for q in queries if 'FROM "auth_user"' in q["sql"]]


def test_leaving_the_agents_group_refuses_the_next_request():
    user = agent_user("kim")
    client = logged_in(user)
    assert directory(client) == 200

    user.groups.remove(Group.objects.get(name="Agents"))

    assert directory(client) == 403


def test_the_group_losing_the_permission_refuses_its_members_next_requests():
    client = logged_in(agent_user("kim"))
    assert directory(client) == 200

    Group.objects.get(name="Agents").permissions.remove(agent_permission())

    assert directory(client) == 403


def test_deleting_the_group_refuses_its_members_next_requests():
    client = logged_in(agent_user("kim"))
    assert directory(client) == 200

    Group.objects.get(name="Agents").delete()

    assert directory(client) == 403


def test_a_refused_user_given_the_permission_is_let_in_at_once():
    user = UserFactory(username="new-hire")
    client = logged_in(user)
    assert directory(client) == 403

    user.user_permissions.add(agent_permission())

    assert directory(client) == 200


def test_a_deactivated_agent_is_sent_to_log_in_at_once():
    user = agent_user("kim")
    client = logged_in(user)
    assert directory(client) == 200

    user.is_active = False
    user.save(update_fields=["is_active"])

    assert directory(client) == 302


def test_one_agents_answer_is_never_anothers():
    agent, stranger = agent_user("kim"), UserFactory(username="stranger")
    assert directory(logged_in(agent)) == 200
    assert directory(logged_in(stranger)) == 403
    assert directory(logged_in(agent)) == 200
