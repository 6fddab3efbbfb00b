"""The dashboard's world: a logged-in producer and a small project of analysed runs."""

import pytest

from tests.dashboard.world import build_world, user_with


@pytest.fixture
def viewer(client):
    """A producer: may view the dashboard and annotate sessions."""
    client.person = user_with("view_session", "add_annotation")
    client.force_login(client.person)
    return client


@pytest.fixture
def viewer_of_both(viewer, other_project):
    """The producer, a member of the other project too."""
    viewer.person.projects.add(other_project)
    return viewer


@pytest.fixture
def world(api):
    return build_world(api)
