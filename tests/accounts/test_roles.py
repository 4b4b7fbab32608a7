"""Every route checks the role: walk every route with every role.

A route is either public (listed below, with why) or carries ``role_required``;
a new route that forgets both fails here.
"""
from __future__ import annotations

import pytest
from flask import url_for

from tests.conftest import csrf_from, login

# Reachable without a full staff login, by design.
PUBLIC_ENDPOINTS = {
    "static", "bootstrap.static",  # CSS/JS assets
    "auth.login", "auth.second_factor", "auth.enrol", "auth.logout",  # the login steps themselves
    "home.index",  # redirects to login when signed out
    "home.switch_language", "home.health",
}
ROLES = ("board", "proctor", "auditor")


def sample_url(app, rule) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name].__class__.__name__
        values[name] = 999999 if converter == "IntegerConverter" else "x"
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def protected_rules(app):
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        if getattr(view, "candidate_facing", False):
            continue  # the candidate side: bearer token or public page shell, tested in its own tests
        assert getattr(view, "required_roles", None), f"{rule.endpoint} ({rule.rule}) has no role check"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            rules.append((rule, method, view.required_roles))
    return rules


def call(client, method, url, token):
    if method == "GET":
        return client.get(url)
    return client.open(url, method=method, data={"csrf_token": token})


@pytest.mark.parametrize("role", (None,) + ROLES)
def test_every_route_with_every_role(app, staff, role):
    client = app.test_client()
    if role is None:
        token = csrf_from(client.get("/login").get_data(as_text=True))
    else:
        login(client, staff.create(role))
        token = csrf_from(client.get("/").get_data(as_text=True))
    rules = protected_rules(app)
    assert rules, "no protected routes found"
    for rule, method, allowed in rules:
        url = sample_url(app, rule)
        response = call(client, method, url, token)
        where = f"{method} {url} as {role}"
        if role is None:
            assert response.status_code in (302, 401), where
            if response.status_code == 302:
                assert "/login" in response.headers["Location"], where
        elif role in allowed:
            assert response.status_code != 403, where
            assert response.status_code < 500, where
        else:
            assert response.status_code == 403, where


def test_multiple_roles_add_up(app, staff):
    client = app.test_client()
    login(client, staff.create("proctor", "auditor"))
    assert client.get("/audit/").status_code == 200
    assert client.get("/bank/").status_code == 403
