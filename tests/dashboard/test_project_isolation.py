"""People see only the projects they are members of: another project's pages are 404."""

from datetime import UTC, datetime

import pytest

from tests.dashboard.world import run_payload, send, user_with

pytestmark = pytest.mark.django_db

THEIR_PAGES = [
    "/?project=other-show",
    "/episodes/?project=other-show",
    "/episodes/compare/?project=other-show&episodes=ep900",
    "/episodes/ep900/?project=other-show",
    "/episodes/ep900/",
    "/sessions/theirs/?project=other-show",
    "/sessions/theirs/",
    "/sessions/theirs/summary.txt?project=other-show",
    "/sessions/theirs/?project=other-show&export=csv",
    "/operations/?project=other-show",
    "/costs/?project=other-show&export=csv",
]


@pytest.fixture
def theirs(other_api):
    return send(other_api, run_payload("theirs", episode="ep900", started_at=datetime.now(UTC)))


@pytest.mark.parametrize("page", THEIR_PAGES)
def test_another_projects_page_is_not_found(viewer, theirs, page):
    assert viewer.get(page).status_code == 404


def test_another_projects_session_cannot_be_annotated(viewer, theirs):
    response = viewer.post("/sessions/theirs/annotations/?project=other-show", {"text": "x"})

    assert response.status_code == 404
    assert not theirs.annotations.exists()


def test_the_switcher_lists_only_ones_own_projects(viewer, viewer_of_both, theirs, project):
    project.members.remove(viewer.person)

    page = viewer.get("/").content.decode()

    assert "theirs" in page  # the one project left is the other show
    assert 'id="project-switch"' not in page  # nothing to switch to
    assert ">Default<" not in page


def test_a_person_in_no_project_is_told_so(client, theirs):
    client.force_login(user_with("view_session", projects=[]))

    response = client.get("/")

    assert response.status_code == 403
    assert b"not a member of any project" in response.content


def test_a_superuser_sees_every_project(client, django_user_model, theirs):
    client.force_login(django_user_model.objects.create_superuser("root", password="x" * 12))

    assert client.get("/sessions/theirs/?project=other-show").status_code == 200
