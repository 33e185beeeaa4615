"""Every response carries the Content-Security-Policy, and nothing in the templates needs an
exception to it: no inline script, handler attribute, javascript: URL, style attribute or
anything htmx would evaluate. (tests/browser/test_content_security_policy.py opens every page
in Chromium under the policy.)"""

import re
from pathlib import Path

import pytest
from django.urls import reverse

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
POLICY = {
    "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'"], "img-src": ["'self'"],
    "object-src": ["'none'"], "base-uri": ["'self'"], "form-action": ["'self'"], "frame-ancestors": ["'none'"],
}
# What the policy would refuse, or what htmx could only do through eval (which it may not).
NEEDS_AN_EXCEPTION = {
    "inline script": r"<script(?![^>]*\bsrc=)[^>]*>",
    "event handler attribute": r"\son[a-z]+\s*=",
    "javascript: URL": r"javascript:",
    "style attribute": r"\sstyle\s*=",
    "style element": r"<style\b",
    "hx-on": r"\b(data-)?hx-on",
    "htmx js: value": r"hx-(vals|vars)\s*=\s*['\"]\s*(js|javascript):",
    "htmx trigger filter": r"hx-trigger\s*=\s*\"[^\"]*\[",
}


def directives(header: str) -> dict[str, list[str]]:
    return {words[0]: words[1:] for words in (directive.split() for directive in header.split(";"))}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "headers"),
    [("login", {}), ("dashboard", {}), ("dashboard", {"HX-Request": "true"}), ("admin:index", {}), ("migrations-now", {"HX-Request": "true"})],
)
def test_every_response_carries_the_policy(client_as, administrator, name, headers):
    client = client_as(administrator)

    response = client.get(reverse(name), headers=headers)

    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"]) == POLICY


@pytest.mark.django_db
def test_the_sign_in_page_of_an_anonymous_visitor_carries_it_too(client):
    assert directives(client.get(reverse("login"))["Content-Security-Policy"]) == POLICY


@pytest.mark.parametrize("kind", NEEDS_AN_EXCEPTION)
def test_no_template_needs_an_exception_to_the_policy(kind):
    found = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in re.finditer(NEEDS_AN_EXCEPTION[kind], path.read_text(), re.IGNORECASE)
    ]
    assert found == []


@pytest.mark.django_db
def test_pages_tell_htmx_to_inject_no_style_and_evaluate_nothing(client):
    page = client.get(reverse("login")).content.decode()

    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false}'>""" in page
