"""Under gunicorn with DEBUG off, every asset a page names is served, under a hashed name that
browsers may cache for good."""

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

CONTENT_TYPES = {
    ".css": {"text/css"},
    ".js": {"text/javascript", "application/javascript"},
    ".svg": {"image/svg+xml"},
    ".png": {"image/png"},
    ".ico": {"image/x-icon", "image/vnd.microsoft.icon"},
}


class StaticReferences(HTMLParser):
    """The /static/ URLs in link href, script src and img src."""

    def __init__(self):
        super().__init__()
        self.urls: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attribute = {"link": "href", "script": "src", "img": "src"}.get(tag)
        value = dict(attrs).get(attribute or "")
        if value and urllib.parse.urlsplit(value).path.startswith("/static/"):
            self.urls.add(value)


def static_references(html: str) -> set[str]:
    parser = StaticReferences()
    parser.feed(html)
    return parser.urls


class HttpClient:
    """A cookie-keeping HTTP client for the server under test."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str):
        try:
            return self.opener.open(self.base_url + path, timeout=30)
        except urllib.error.HTTPError as error:
            return error  # an answer all the same: status, headers and body

    def sign_in(self, username: str, password: str = "correct horse battery staple") -> str:
        """Sign in through the login form; the page it lands on."""
        self.get("/login/").close()
        token = next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")
        form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        with self.opener.open(self.base_url + "/login/", data=form.encode(), timeout=30) as response:
            assert urllib.parse.urlsplit(response.url).path == "/", "the sign-in did not reach the dashboard"
            return response.read().decode()


def assert_served(client: HttpClient, url: str) -> None:
    path = urllib.parse.urlsplit(url).path
    suffix = path[path.rfind("."):]
    with client.get(path) as response:
        assert response.status == 200, f"{path} answered {response.status}"
        content_type = response.headers.get_content_type()
        assert content_type in CONTENT_TYPES.get(suffix, set()), f"{path} served as {content_type}"
        assert response.read(), f"{path} is empty"
        # A hashed name never changes content, so WhiteNoise lets browsers keep it.
        assert "immutable" in response.headers.get("Cache-Control", ""), f"{path} is not a hashed name"


def test_every_asset_of_the_sign_in_page_and_the_dashboard_is_served(app_server, viewer):
    client = HttpClient(app_server.url)
    with client.get("/login/") as response:
        sign_in_page = response.read().decode()
    dashboard = client.sign_in("viewer")

    assets = static_references(sign_in_page) | static_references(dashboard)
    assert any(url.endswith(".css") for url in assets) and any("htmx" in url for url in assets)
    for url in sorted(assets):
        assert_served(client, url)
