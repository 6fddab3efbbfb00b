"""The dashboard's world: a logged-in producer and a small project of analysed runs."""

import pytest

from tests.dashboard.world import build_world, user_with


@pytest.fixture
def viewer(client):
    """A producer: may view the dashboard and annotate sessions."""
    client.force_login(user_with("view_session", "add_annotation"))
    return client


@pytest.fixture
def world(api):
    return build_world(api)
