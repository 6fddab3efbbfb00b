"""A small world for the admin and role tests: people in roles, stored sessions, actions."""

from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from ingest.schemas import SessionPayload
from ingest.services import store_payload
from metrics.analysis.analyze import analyze_session
from metrics.models import DEFAULT_PROJECT_SLUG, Project, Session

PASSWORD = "a-long-test-password"


def person(name: str, role: str | None = None, *, staff: bool = True,
           superuser: bool = False, projects: list[Project] | None = None) -> User:
    """A user in ``role`` (a group the roles migration made), staff unless said otherwise,
    and a member of ``projects`` (by default the default project)."""
    if superuser:
        return User.objects.create_superuser(name, password=PASSWORD)
    user = User.objects.create_user(name, password=PASSWORD, is_staff=staff)
    if role:
        user.groups.add(Group.objects.get(name=role))
    user.projects.add(*(projects if projects is not None else [default_project()]))
    return user


def default_project() -> Project:
    return Project.objects.get_or_create(
        slug=DEFAULT_PROJECT_SLUG, defaults={"name": "Default"}
    )[0]


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def store(project: Project, payload: dict[str, Any], *, analyze: bool = True) -> Session:
    """Store a payload as ingest does, then analyze it (tests run inside a transaction, so
    ingest's after-commit analysis does not run by itself)."""
    session = store_payload(project, SessionPayload.model_validate(payload)).session
    if analyze:
        analyze_session(session)
        session.refresh_from_db()
    return session


def admin_url(model: str, view: str = "changelist", *args: Any, app: str = "metrics") -> str:
    return reverse(f"admin:{app}_{model}_{view}", args=args)


def run_action(client: Client, action: str, sessions, *, follow: bool = False,
               **fields: Any):
    """POST an action from the session changelist, as its drop-down does."""
    data = {
        "action": action,
        "index": 0,
        ACTION_CHECKBOX_NAME: [s.pk for s in sessions],
        **fields,
    }
    return client.post(admin_url("session"), data, follow=follow)
