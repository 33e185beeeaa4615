import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache

from core import metric_files
from core.role_groups import sync_role_groups
from core.roles import Role
from tests.production_server import AppServer, collect_static, production_server
from tests.redis_server import RedisServer


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Each xdist worker gets its own Redis database, REDIS_URL's index plus the worker's
    number, set in the worker's environment before its Django settings load: queues, the API
    throttle counts and locks of one worker's tests never meet another's. (The test database
    is the worker's own already: pytest-django suffixes its name with the worker's id.)"""
    base_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix, _, index = base_url.rpartition("/")
    base = int(index or 0)
    databases = _redis_database_count(base_url)
    if base + len(specs) > databases:
        raise pytest.UsageError(
            f"{len(specs)} test workers need Redis databases {base} to {base + len(specs) - 1}, and this Redis has {databases}: "
            "give TEST_REDIS_URL a lower database index or run fewer workers (-n)"
        )
    for number, spec in enumerate(specs):
        spec.env["REDIS_URL"] = f"{prefix}/{base + number}"


def _redis_database_count(url: str) -> int:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        return int(Redis.from_url(url, socket_connect_timeout=2).config_get("databases")["databases"])
    except (RedisError, KeyError, ValueError):
        return 16  # Redis's default


def pytest_configure(config):
    """The test session is one deployment: one directory of metric files, empty when it
    starts, shared by the worker, scheduler and web processes the tests start (they inherit
    the environment). Django is set up before conftests load, so this process switches to
    the files here, before anything records."""
    path = tempfile.mkdtemp(prefix="vmotion-test-metrics-")
    os.environ[metric_files.DIRECTORY_VARIABLE] = path
    metric_files.use_process_files()
    config.add_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))


PERSONA_PASSWORD = "correct horse battery staple"
_persona_password_hashes: dict[tuple[str, ...], str] = {}


def _persona_password_hash() -> str:
    """The personas' password as the configured hasher stores it, hashed once per hasher
    setting: the production hasher takes a fifth of a second a hash on purpose, and hundreds
    of tests make a persona. The hash is a real one; any process checks it as it would any."""
    hashers = tuple(django_settings.PASSWORD_HASHERS)
    if hashers not in _persona_password_hashes:
        _persona_password_hashes[hashers] = make_password(PERSONA_PASSWORD)
    return _persona_password_hashes[hashers]


def _user_with_role(username: str, role: Role | None) -> User:
    # A transactional test flushes the groups the data migration made; put them back.
    if not Group.objects.exists():
        sync_role_groups(Group, Permission)
    user = User.objects.create(username=User.normalize_username(username), password=_persona_password_hash())
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


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    """Pages rendered in this process (the Django test client) name assets without hashes.

    The hashed-name storage needs the manifest that collectstatic writes, and no test runs
    collectstatic for the test client; `app_server` serves the real setting over collected files.
    """
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture(autouse=True)
def api_throttle_out_of_the_way(settings):
    """The suite calls the API far faster than any script (Schemathesis, for one): rates no
    test reaches (test_api_throttling sets its own and clears the counts)."""
    settings.API_THROTTLE_RATES = {"user": "100000/minute", "anon": "100000/minute"}
    cache.clear()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    """A Redis this test starts, restarts, freezes and stops itself, without persistence as
    docker-compose runs it (set `persist` before a restart to keep its data)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
    return collect_static(tmp_path_factory.mktemp("static"))


@pytest.fixture
def app_server(django_db_setup, collected_static, tmp_path) -> Iterator[AppServer]:
    """gunicorn with DEBUG off and collected static files, on the test database.

    Its requests see only committed rows: tests that use it need django_db(transaction=True).
    A fresh server for each test: such a test's database is flushed at its end, and a server
    that lived on would keep ids it cached (content types, for the audit trail) from rows gone.
    """
    with production_server(collected_static, tmp_path) as server:
        yield server
