"""Staff login: password, TOTP (valid, expired, replayed), recovery codes, lockout, logout."""
from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from sqlalchemy import select

from exam.accounts import staff as accounts
from exam.audit.models import AuditEntry
from exam.core.db import get_session, utcnow
from tests.conftest import csrf_from, login


def post_form(client, url, data):
    page = client.get(url)
    return client.post(url, data={"csrf_token": csrf_from(page.get_data(as_text=True)), **data})


def test_board_user_reaches_nothing_before_second_factor(client, staff):
    user = staff.create("board")
    response = login(client, user, with_code=False)
    assert response.headers["Location"].endswith("/login/code")
    for url in ("/", "/audit/", "/audit/verify"):
        answer = client.get(url)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], url


def test_valid_code_lets_in_and_replayed_code_is_refused(client, app, staff):
    user = staff.create("board")
    login(client, user, with_code=False)
    code = pyotp.TOTP(user.totp_secret).now()
    response = post_form(client, "/login/code", {"code": code})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    # Same code again from a second browser: refused as a replay.
    other = app.test_client()
    login(other, user, with_code=False)
    response = post_form(other, "/login/code", {"code": code})
    assert response.status_code == 401
    assert other.get("/").status_code == 302


def test_expired_code_is_refused_but_small_drift_accepted(db, staff):
    user = staff.create("auditor")
    outcome = accounts.start_login(db, user.username, user.password, now=utcnow())
    staff_session = accounts.session_for_token(db, outcome.token)
    totp = pyotp.TOTP(user.totp_secret)
    now = utcnow()
    assert not accounts.pass_second_factor(db, staff_session, totp.at(now - timedelta(seconds=90)), now=now)
    assert accounts.pass_second_factor(db, staff_session, totp.at(now - timedelta(seconds=30)), now=now)


def test_enrolment_shows_qr_and_uri_then_gives_single_use_recovery_codes(client, app, staff):
    user = staff.create("board", enrolled=False)
    response = login(client, user, with_code=False)
    assert response.headers["Location"].endswith("/login/enrol")
    page = client.get("/login/enrol").get_data(as_text=True)
    assert "otpauth://totp/" in page and 'src="data:image/svg+xml' in page
    response = post_form(client, "/login/enrol", {"code": pyotp.TOTP(user.totp_secret).now()})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="recovery-codes"' in html
    codes = re.findall(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>", html)
    assert len(codes) == accounts.RECOVERY_CODE_COUNT
    assert client.get("/").status_code == 200

    second = app.test_client()
    login(second, user, with_code=False)
    assert post_form(second, "/login/code", {"code": codes[0]}).status_code == 302
    third = app.test_client()
    login(third, user, with_code=False)
    assert post_form(third, "/login/code", {"code": codes[0]}).status_code == 401  # single use


def test_logout_kills_a_captured_cookie(client, app, login_as):
    login_as("board")
    assert client.get("/").status_code == 200
    cookie = client.get_cookie("session").value
    page = client.get("/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    response = thief.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_logout_without_csrf_is_refused(client, login_as):
    login_as("proctor")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_lockout_after_repeated_failures_is_audit_logged(client, app, staff):
    user = staff.create("proctor")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        response = post_form(client, "/login", {"username": user.username, "password": "wrong-password!"})
        assert response.status_code == 401
    # Right password now: still locked.
    response = post_form(client, "/login", {"username": user.username, "password": user.password})
    assert response.status_code == 401
    with app.app_context():
        actions = get_session().scalars(select(AuditEntry.action)
                                        .where(AuditEntry.object_id == user.username)).all()
    assert actions.count("auth.login_failed") == app.config["LOGIN_MAX_FAILURES"] + 1
    assert "auth.lockout" in actions


def test_new_session_at_login(client, staff):
    user = staff.create("proctor")
    client.get("/login")
    with client.session_transaction() as flask_session:
        flask_session["planted"] = "by an attacker"
    login(client, user)
    with client.session_transaction() as flask_session:
        assert "planted" not in flask_session


def test_open_redirect_refused(client, staff):
    user = staff.create("proctor")
    page = client.get("/login?next=https://evil.example/")
    response = client.post("/login?next=https://evil.example/",
                           data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                 "username": user.username, "password": user.password})
    assert "evil.example" not in response.headers["Location"]
