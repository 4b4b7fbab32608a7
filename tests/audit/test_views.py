"""The auditor's pages through the real client: the chain browser (filters, keyset pages, the
verdict), a candidate's timeline, the re-tally page, the bundle download and the fingerprint;
an auditor reads everything and changes nothing."""
from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta

from flask import url_for
from sqlalchemy import func, select, text, update

from exam.audit import views as auditor
from exam.audit.models import AuditEntry, AuditHead
from exam.room import attempts, sessions
from exam.room.models import Attempt, ResponseLog
from exam.setup.sittings import current_access_code
from proctor import room
from tests.accounts.test_roles import PUBLIC_ENDPOINTS, sample_url
from tests.audit.conftest import MACHINE, T0, drop_response_log_guard
from tests.audit.test_chain import drop_guards
from tests.conftest import csrf_from, login
from tests.factories import make_ready_candidates


def page(client, url, status=200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def rows_of(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body, flags=re.S)[1:]  # without the header


# --- the chain browser -----------------------------------------------------------------------------

def test_chain_browser_shows_full_hashes_and_the_verdict(client, login_as, db, sat_exam):
    login_as("auditor")
    html = page(client, "/audit/")
    assert 'id="chain-verdict"' in html and "alert-success" in html
    last = db.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert last.hash in html and last.prev_hash in html  # the full hashes, inside <details>
    assert f'id="entry-{last.seq}"' in html


def test_chain_browser_filters_by_candidate_exam_action_actor_and_time(client, login_as, db, sat_exam):
    login_as("board")
    number = sat_exam.candidates[1].registration_no
    public_id = sat_exam.attempts[1].public_id
    html = page(client, f"/audit/?candidate={number}")
    rows = rows_of(html, "chain-entries")
    assert {"candidate.login", "attempt.start", "attempt.submit"} <= {a for r in rows for a in re.findall(
        r"<td>([a-z_.]+)</td>", r)}
    assert all(number in r or public_id in r for r in rows)
    assert sat_exam.candidates[0].registration_no not in "".join(rows)

    rows = rows_of(page(client, f"/audit/?exam={sat_exam.exam.code}&action=attempt.sub"), "chain-entries")
    assert len(rows) == 4 and all("attempt.submit" in r for r in rows)
    rows = rows_of(page(client, "/audit/?actor=test"), "chain-entries")
    assert rows and all("<td>test" in r for r in rows)
    # 08:01 Hà Nội is T0 + 1 min: the logins; nothing of the sitting happened before 08:00.
    assert "Không có mục nào khớp" in page(client, f"/audit/?exam={sat_exam.exam.code}&end=2026-06-15 07:59")
    rows = rows_of(page(client, f"/audit/?exam={sat_exam.exam.code}&start=2026-06-15 08:00&end=2026-06-15 08:01:00"),
                   "chain-entries")
    assert sorted(re.findall(r"<td>([a-z_.]+)</td>", r)[0] for r in rows) == ["attempt.start", "candidate.login"]
    assert all(sat_exam.candidates[0].registration_no in r or sat_exam.attempts[0].public_id in r for r in rows)
    html = page(client, "/audit/?exam=NOPE&start=tomorrow")
    assert "Không có kỳ thi mã NOPE" in html and "Thời điểm không hợp lệ" in html


def test_chain_pages_by_keyset_on_seq(db, sat_exam):
    total = db.scalar(select(func.count()).select_from(AuditEntry))
    first, newer, older = auditor.chain_page(db, [], before=None, after=None, size=5)
    assert [e.seq for e in first] == list(range(total, total - 5, -1)) and newer is None and older == total - 4
    second, newer, older = auditor.chain_page(db, [], before=older, after=None, size=5)
    assert [e.seq for e in second] == list(range(total - 5, total - 10, -1)) and newer == total - 5
    back, newer, older = auditor.chain_page(db, [], before=None, after=newer, size=5)
    assert [e.seq for e in back] == [e.seq for e in first] and newer is None
    last, newer, older = auditor.chain_page(db, [], before=6, after=None, size=5)
    assert [e.seq for e in last] == [5, 4, 3, 2, 1] and older is None and newer == 5


def test_chain_browser_shows_a_broken_chain(app, client, login_as, db, sat_exam):
    login_as("auditor")
    app.config["AUDIT_VERDICT_MAX_AGE_S"] = 0
    drop_guards(db)
    db.execute(text("UPDATE audit_entry SET actor = 'mallory' WHERE seq = 3"))
    db.commit()
    html = page(client, "/audit/")
    assert "alert-danger" in html and "entry 3 was altered" in html


# --- a candidate's timeline --------------------------------------------------------------------------

def test_timeline_settles_i_answered_b(client, login_as, db, sat_exam):
    """Every save with its server time, seq, question number, the letters as displayed and the original
    options, the machine; the history verified against the chain's submission entry."""
    login_as("auditor")
    candidate, attempt = sat_exam.candidates[0], sat_exam.attempts[0]
    html = page(client, f"/audit/exams/{sat_exam.exam.code}/candidates/{candidate.registration_no}")
    events = rows_of(html, "timeline")
    saves = [r for r in events if "event-save" in r]
    logs = db.scalars(select(ResponseLog).where(ResponseLog.attempt_id == attempt.id).order_by(ResponseLog.id)).all()
    assert len(saves) == len(logs) == len(sat_exam.keys[attempt.id]) + 1
    item, right, wrong, _ = sat_exam.keys[attempt.id][0]
    first = logs[0]
    shown = "ABCDEF"[item.option_ids.index(wrong[0])]
    original = "ABCDEF"[item.option_order[item.option_ids.index(wrong[0])]]
    assert f"Câu 1: chọn {shown} (phương án gốc {original})" in saves[0]
    assert first.at in saves[0] and f"seq {first.seq}" in saves[0] and MACHINE in saves[0]
    assert any("event-candidate-login" in r for r in events) and any("event-attempt-submit" in r for r in events)
    assert 'id="submit-match"' in html and "badge bg-success" in html.split('id="submit-match"')[0][-60:]
    answers = rows_of(html, "final-answers")
    assert len(answers) == len(sat_exam.keys[attempt.id]) and 'class="outcome-right">đúng' in answers[0]
    assert "alert-success" in html.split('id="candidate-retally"')[0][-40:]


def test_timeline_shows_a_tampered_history(client, login_as, db, sat_exam):
    login_as("auditor")
    candidate, attempt = sat_exam.candidates[0], sat_exam.attempts[0]
    drop_response_log_guard(db)
    db.execute(update(ResponseLog).where(ResponseLog.attempt_id == attempt.id).values(machine="10.9.9.9 forged"))
    db.commit()
    html = page(client, f"/audit/exams/{sat_exam.exam.code}/candidates/{candidate.registration_no}")
    assert "bị thay đổi" in html and "[history]" in html
    assert page(client, f"/audit/exams/{sat_exam.exam.code}/candidates/NOPE", 404)


def test_candidate_list_and_search(client, login_as, sat_exam):
    login_as("auditor")
    html = page(client, f"/audit/exams/{sat_exam.exam.code}/candidates")
    assert len(rows_of(html, "audit-candidates")) == 4
    number = sat_exam.candidates[2].registration_no
    rows = rows_of(page(client, f"/audit/exams/{sat_exam.exam.code}/candidates?q={number}"), "audit-candidates")
    assert len(rows) == 1 and number in rows[0]


# --- re-tally, bundle, fingerprint -------------------------------------------------------------------

def test_retally_page(client, login_as, db, results_exam):
    login_as("auditor")
    url = f"/audit/exams/{results_exam.exam.code}/retally"
    assert "alert-success" in page(client, url).split('id="retally-verdict"')[0][-40:]
    attempt = results_exam.attempts[3]
    db.execute(update(Attempt).where(Attempt.id == attempt.id).values(score={"total": 99, "sections": []}))
    db.commit()
    html = page(client, url)
    assert "alert-danger" in html and results_exam.candidates[3].registration_no in html


def test_bundle_download_is_recorded(client, login_as, db, results_exam):
    user = login_as("auditor")
    response = client.get(f"/audit/exams/{results_exam.exam.code}/bundle.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    bundle = zipfile.ZipFile(io.BytesIO(response.data))
    manifest = json.loads(bundle.read("manifest.json"))
    assert manifest["exam"] == results_exam.exam.code and "attempts.jsonl" in manifest["files"]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "audit.export")).one()
    assert entry.actor == user.username and entry.role == "auditor"
    assert json.loads(entry.details)["chain_count"] == manifest["chain"]["count"] == entry.seq - 1


def test_fingerprint_command_and_page(runner, client, login_as, db, sat_exam, tmp_path):
    login_as("auditor")  # first: signing in adds entries
    db.expire_all()
    head = db.get(AuditHead, 1)
    digits = head.hash[:16]
    expected = f"{head.count} · {digits[:4]} {digits[4:8]} {digits[8:12]} {digits[12:]}"
    result = runner.invoke(args=["audit", "fingerprint", "--qr", str(tmp_path / "head.svg")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == expected and head.hash in result.output
    assert (tmp_path / "head.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    result = runner.invoke(args=["audit", "fingerprint", "--qr", str(tmp_path / "head.png")])
    assert result.exit_code == 0 and (tmp_path / "head.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runner.invoke(args=["audit", "fingerprint", "--qr", str(tmp_path / "head.gif")]).exit_code != 0

    html = page(client, "/audit/fingerprint")
    assert expected in html and 'id="fingerprint-qr"' in html and "data:image/svg+xml" in html
    assert f"exam-audit-head/1|{head.chain_id}|{head.count}|{head.hash}" in html


def test_fingerprint_refuses_a_broken_chain(runner, db, sat_exam):
    drop_guards(db)
    db.execute(text("DELETE FROM audit_entry WHERE seq = 2"))
    db.commit()
    result = runner.invoke(args=["audit", "fingerprint"])
    assert result.exit_code == 1 and "BROKEN: entry 2 is missing" in result.output


# --- read everything, change nothing -------------------------------------------------------------------

def test_auditor_can_read_every_auditor_page(app, client, login_as, results_exam):
    login_as("auditor")
    code, number = results_exam.exam.code, results_exam.candidates[0].registration_no
    values = {"code": code, "registration_no": number}
    seen = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("auditor."):
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        seen += 1
    assert seen >= 9


WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Where a signed-in auditor may write: signing out, and the login steps themselves (public by design).
AUDITOR_MAY_WRITE = {"auth.logout", "auth.login", "auth.second_factor", "auth.enrol"}


def test_auditor_writes_nowhere(app, staff, results_exam):
    """Every route that accepts POST, PUT, PATCH or DELETE answers 403 to an auditor (the language
    switch is a GET). Candidate-facing routes do not take staff sessions at all: the auditor's session
    gets no success there either."""
    client = app.test_client()
    login(client, staff.create("auditor"))
    token = csrf_from(client.get("/audit/").get_data(as_text=True))
    checked = 0
    for rule in app.url_map.iter_rules():
        methods = sorted(set(rule.methods) & set(WRITE_METHODS))
        if not methods or rule.endpoint in AUDITOR_MAY_WRITE:
            continue
        view = app.view_functions[rule.endpoint]
        url = sample_url(app, rule)
        for method in methods:
            response = client.open(url, method=method, data={"csrf_token": token})
            where = f"{method} {url}"
            if getattr(view, "candidate_facing", False):
                assert response.status_code >= 400, where
            else:
                assert response.status_code == 403, where
            checked += 1
    assert checked > 10
    assert "home.switch_language" in PUBLIC_ENDPOINTS
    assert {m for r in app.url_map.iter_rules() if r.endpoint == "home.switch_language"
            for m in r.methods} & set(WRITE_METHODS) == set()


def test_timeline_shows_the_proctors_actions(client, login_as, db):
    """Extensions, a room pause and resume, an incident at the seat: all on the candidate's timeline."""

    candidate = make_ready_candidates(db, 1, starts_at=T0)[0]
    sitting = candidate.sitting
    now = T0 + timedelta(minutes=1)
    result = sessions.login(db, registration_no=candidate.registration_no, date_of_birth=candidate.date_of_birth,
                            access_code=current_access_code(sitting, now), machine=MACHINE, now=now)
    attempts.start(db, result.attempt, sitting, attempts.exam_sections(db, candidate.exam_id), now=now)
    room.extend_time(db, candidate, seconds=300, actor="giamthi", reason="Máy treo năm phút", now=now + timedelta(
        minutes=1))
    room.pause_room(db, sitting, actor="giamthi", reason="Mất điện cả phòng", now=now + timedelta(minutes=2))
    room.resume_room(db, sitting, actor="giamthi", reason="Có điện trở lại", now=now + timedelta(minutes=4))
    room.note_incident(db, sitting, kind=room.INCIDENT_KINDS[0], description="Thí sinh báo bàn phím kẹt",
                       actor="giamthi", now=now + timedelta(minutes=5), candidate=candidate)
    db.commit()
    login_as("auditor")
    html = page(client, f"/audit/exams/{candidate.exam.code}/candidates/{candidate.registration_no}")
    events = "".join(rows_of(html, "timeline"))
    for label in ("Đăng nhập", "Bắt đầu làm bài", "Gia hạn thời gian", "Tạm dừng cả phòng",
                  "Tiếp tục cả phòng", "Thí sinh báo bàn phím kẹt"):
        assert label in events, label
    assert events.count("bàn phím kẹt") == 1  # the incident once, though both its row and its entry exist
