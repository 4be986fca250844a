"""The OpenAPI document describes the API and is served without login."""

from spie.api.v1 import BLUEPRINTS


def test_openapi_document_lists_every_api_route(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["info"]["title"] == "spie"
    documented = set(document["paths"])
    api_rules = {
        rule.rule.replace("<int:", "{").replace("<string:", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        and rule.endpoint.split(".")[0] in {b.name for b in BLUEPRINTS}
    }
    assert api_rules, "no API route found"
    assert api_rules <= documented, api_rules - documented


def test_interactive_page_is_served(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()


def test_security_headers_on_every_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]
