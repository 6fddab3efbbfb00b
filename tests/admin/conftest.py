"""The admin's world: an Editor, as a user and as a logged-in client."""

import pytest

from tests.admin.helpers import logged_in, person


@pytest.fixture
def eddie(db):
    return person("eddie", "Editors")


@pytest.fixture
def editor(eddie):
    return logged_in(eddie)
