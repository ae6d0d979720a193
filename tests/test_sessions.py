"""Sessions stay rows of the database (config.sessions): a logout ends them everywhere."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.sessions import SessionStore

pytestmark = pytest.mark.django_db


def _same_session(client: Client) -> Client:
    """Another browser tab, or another web process, presenting the same session cookie."""
    other = Client()
    other.cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return other


def test_a_logout_ends_the_session_for_every_holder_of_its_cookie(agent_client):
    directory = reverse("customers:directory")
    other = _same_session(agent_client)
    assert other.get(directory).status_code == 200

    agent_client.post(reverse("logout"))

    assert other.get(directory).status_code == 302
    assert not Session.objects.exists()


def test_an_expired_session_is_not_read(agent_client):
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    response = agent_client.get(reverse("customers:directory"))

    assert response.status_code == 302


def test_a_session_reads_back_what_was_saved():
    session = SessionStore()
    session["answer"] = 42
    session.create()

    assert SessionStore(session.session_key).load() == {"answer": 42}
    unknown = SessionStore("x" * 32)
    assert unknown.load() == {} and unknown.session_key is None
