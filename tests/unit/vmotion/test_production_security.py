"""The web service as docker-compose runs it (its environment, gunicorn, DEBUG off) behind a
TLS-terminating proxy: plain HTTP is redirected, HTTPS answers carry HSTS and the
Content-Security-Policy, cookies are Secure, HttpOnly and SameSite=Lax, login throttling
tells browsers apart by the address the proxy names, /metrics is closed without its token,
and `check --deploy` finds nothing (but an open /metrics)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest

from tests.compose import service_environment
from tests.processes import ROOT, process_env
from tests.production_server import AppServer, production_server

pytestmark = pytest.mark.django_db(transaction=True)

SITE = "vmotion.example"  # the ALLOWED_HOSTS an operator's .env gives compose
PASSWORD = "correct horse battery staple"


@pytest.fixture
def compose_web(django_db_setup, collected_static, tmp_path) -> Iterator[AppServer]:
    """gunicorn with the web service's environment; only the database, Redis and the directory
    standing in for the metrics volume are the tests'."""
    metrics_volume = tmp_path / "metrics"
    metrics_volume.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        **service_environment("web"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_volume),
        "DATABASE_URL": process_env()["DATABASE_URL"],
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "STATIC_ROOT": str(collected_static),
    }
    with production_server(collected_static, tmp_path, env=env) as server:
        yield server


class ProxiedBrowser:
    """Requests as the proxy forwards them: the site's Host, the scheme, the browser's address."""

    def __init__(self, server: AppServer, address: str = "203.0.113.7"):
        self.port = urllib.parse.urlsplit(server.url).port
        self.address = address
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, https: bool = True) -> http.client.HTTPResponse:
        headers = {"Host": SITE, "X-Forwarded-For": f"198.51.100.99, {self.address}"}
        if https:
            headers["X-Forwarded-Proto"] = "https"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")})
            headers |= {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"https://{SITE}"}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.body = response.read().decode()
        connection.close()
        for cookie in set_cookies(response).values():
            self.cookies[cookie.key] = cookie.value
        return response

    def sign_in(self, username: str, password: str) -> http.client.HTTPResponse:
        self.request("GET", "/login/")
        return self.request("POST", "/login/", {"username": username, "password": password})


def set_cookies(response: http.client.HTTPResponse) -> dict:
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return dict(jar)


def test_plain_http_is_redirected_to_https(compose_web):
    response = ProxiedBrowser(compose_web).request("GET", "/login/", https=False)

    assert response.status == 301
    assert response.headers["Location"] == f"https://{SITE}/login/"


def test_https_answers_carry_hsts_and_the_content_security_policy(compose_web):
    response = ProxiedBrowser(compose_web).request("GET", "/login/")

    assert response.status == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["X-Frame-Options"] == "DENY"


def test_the_csrf_and_session_cookies_are_secure_http_only_and_same_site_lax(compose_web, viewer):
    browser = ProxiedBrowser(compose_web)

    csrf = set_cookies(browser.request("GET", "/login/"))["csrftoken"]
    signed_in = browser.request("POST", "/login/", {"username": "viewer", "password": PASSWORD})
    session = set_cookies(signed_in)["sessionid"]

    assert signed_in.status == 302 and signed_in.headers["Location"] == "/"
    for cookie in (csrf, session):
        assert cookie["secure"] is True and cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert session["max-age"] == str(10 * 3600)  # SESSION_HOURS' default
    assert browser.request("GET", "/").status == 200


def test_metrics_answers_401_without_the_token_compose_leaves_unset(compose_web, administrator):
    browser = ProxiedBrowser(compose_web)
    browser.sign_in("administrator", PASSWORD)  # a session is no key to it either

    response = browser.request("GET", "/metrics")

    assert response.status == 401 and "vmotion_" not in response.body and "set METRICS_TOKEN" in response.body


def test_login_throttling_locks_out_one_username_at_the_address_the_proxy_names(compose_web, viewer):
    guesser = ProxiedBrowser(compose_web, address="203.0.113.7")
    answers = [guesser.sign_in("viewer", f"guess {attempt}").status for attempt in range(5)]

    assert answers == [200, 200, 200, 200, 429]
    assert "Too many failed sign-ins for viewer from your address" in guesser.sign_in("viewer", PASSWORD).body
    # The same user from another address (the first X-Forwarded-For entry is the client's
    # say-so and does not count) still signs in.
    assert ProxiedBrowser(compose_web, address="203.0.113.8").sign_in("viewer", PASSWORD).status == 302


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` in exactly this environment, its metrics volume a fresh directory."""
    with tempfile.TemporaryDirectory() as metrics_volume:
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
            env={"PATH": os.environ["PATH"], **env, "PROMETHEUS_MULTIPROC_DIR": metrics_volume},
        )


def test_check_deploy_is_clean_for_the_web_service_and_warns_when_metrics_is_opened():
    env = service_environment("web")

    clean = check_deploy(env)
    opened = check_deploy({**env, "METRICS_PUBLIC": "1"})
    with_token = check_deploy({**env, "METRICS_PUBLIC": "1", "METRICS_TOKEN": "a-long-random-scrape-token"})

    assert clean.returncode == 0 and "System check identified no issues" in clean.stdout, clean.stdout + clean.stderr
    assert opened.returncode != 0 and "vmotion.W001" in opened.stderr and "/metrics is open to anyone" in opened.stderr
    assert with_token.returncode == 0, with_token.stdout + with_token.stderr
