"""Who may do what on the dashboard. The admin enforces the same Django permissions.

Roles are Django groups: Producers look and annotate, Editors also correct sessions and
manage prices and budgets, superusers manage API keys. What a person sees is further
limited to the projects they are a member of; superusers see every project.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from metrics.models import Annotation, Project

User = AbstractBaseUser | AnonymousUser

VIEW_DASHBOARD = "metrics.view_session"
ADD_ANNOTATION = "metrics.add_annotation"
CHANGE_ANNOTATION = "metrics.change_annotation"
CHANGE_SESSION = "metrics.change_session"


def can_view_dashboard(user: User) -> bool:
    return user.is_active and user.has_perm(VIEW_DASHBOARD)


def can_annotate(user: User) -> bool:
    return can_view_dashboard(user) and user.has_perm(ADD_ANNOTATION)


def can_edit_annotation(user: User, annotation: Annotation) -> bool:
    """Authors edit their own notes; editors (who may change sessions) edit any."""
    if not user.is_active or not user.has_perm(CHANGE_ANNOTATION):
        return False
    return annotation.author_id == user.pk or user.has_perm(CHANGE_SESSION)


def visible_projects(user: User) -> QuerySet[Project]:
    """The projects a person may see: their own, or all of them for a superuser."""
    if not user.is_active:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(members=user)


def can_accept_take(user: User) -> bool:
    """Editors (who may change sessions) choose which run is an episode's accepted take."""
    return can_view_dashboard(user) and user.has_perm(CHANGE_SESSION)
