import os

import pytest
from django.contrib.auth.models import Group, User

from vmotion.roles import Role

# CI installs every prerequisite, so there a missing one is a failure, never a skip.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing; fail under CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI: {reason}")
    pytest.skip(reason)


def _user_with_role(username: str, role: Role | None) -> User:
    user = User.objects.create_user(username=username, password="correct horse battery staple")
    if role is not None:
        user.groups.add(Group.objects.get(name=role.group_name))
    return user


@pytest.fixture
def viewer(db) -> User:
    return _user_with_role("viewer", Role.VIEWER)


@pytest.fixture
def operator(db) -> User:
    return _user_with_role("operator", Role.OPERATOR)


@pytest.fixture
def administrator(db) -> User:
    return _user_with_role("administrator", Role.ADMINISTRATOR)


@pytest.fixture
def no_role_user(db) -> User:
    return _user_with_role("nobody", None)


@pytest.fixture
def client_as(client):
    """Log the Django test client in as a persona: client_as(viewer)."""

    def login(user: User):
        client.force_login(user)
        return client

    return login
