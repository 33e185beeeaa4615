"""htmx only reads (forms post without it), so pages hand htmx no CSRF token."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


def test_no_template_makes_an_htmx_write():
    writes = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        for match in re.finditer(r"hx-(post|put|patch|delete)\b", path.read_text())
    ]
    assert writes == [], "an htmx write needs the CSRF token sent back (hx-headers)"


@pytest.mark.django_db
def test_a_page_gives_htmx_no_csrf_header(client_as, viewer):
    assert "hx-headers" not in client_as(viewer).get(reverse("dashboard")).content.decode()
