"""The OpenAPI schema: generated without a warning and valid, every error documented with
the one error body; the docs page over it needs no CDN and no inline script."""

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import reverse

from tests.api import token_client

pytestmark = pytest.mark.django_db


def test_the_schema_is_generated_without_a_warning_and_is_valid_openapi(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "vmotion API"
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_every_error_an_operation_answers_has_the_error_body(viewer):
    schema = token_client(viewer).get("/api/schema/").json()

    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            for code, response in operation["responses"].items():
                if code >= "400":
                    reference = response["content"]["application/json"]["schema"]["$ref"]
                    assert reference in ("#/components/schemas/Error", "#/components/schemas/Conflict"), (method, path, code)
    assert set(schema["paths"]["/api/v1/tasks/"]["post"]["responses"]) == {"202", "400", "401", "403", "409", "429"}


def test_the_schema_is_json_or_yaml_and_needs_a_sign_in(viewer):
    refused = token_client().get("/api/schema/")
    as_yaml = token_client(viewer).get("/api/schema/", {"format": "yaml"})

    assert refused.status_code == 401 and refused.json()["message"] == "Authentication credentials were not provided."
    assert yaml.safe_load(as_yaml.content)["info"]["title"] == "vmotion API"


def test_the_docs_page_loads_swagger_ui_from_local_static_files_and_has_no_inline_script(client_as, viewer):
    response = client_as(viewer).get(reverse("api:docs"))
    page = response.content.decode()

    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert len(scripts) == 3 and all('src="/static/' in attributes and body == "" for attributes, body in scripts)
    assert "<style" not in page and " style=" not in page and "//cdn" not in page
    for asset in re.findall(r'(?:src|href)="/static/([^"]+)"', page):
        assert finders.find(asset), asset
    assert f'data-schema-url="{reverse("api:schema")}"' in page
    # Its policy allows Swagger UI's data: icons and nothing more than every page's.
    docs_policy = directives(response["Content-Security-Policy"])
    page_policy = directives(client_as(viewer).get(reverse("dashboard"))["Content-Security-Policy"])
    assert docs_policy == {**page_policy, "img-src": "'self' data:"} and page_policy["img-src"] == "'self'"


def directives(policy: str) -> dict[str, str]:
    return dict(directive.strip().partition(" ")[::2] for directive in policy.split(";") if directive.strip())


def test_the_docs_page_sends_an_anonymous_visitor_to_sign_in(client):
    response = client.get(reverse("api:docs"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
