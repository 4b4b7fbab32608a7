"""The candidate's page shells (/thi/...): they render, are never cached, carry nothing about any
candidate, load only our own scripts and styles, and keep to the CSP (no inline script or style)."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.factories import make_candidates, make_exam, make_sitting

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "/thi/": "exam_room.sign_in",
    "/thi/huong-dan": "exam_room.instructions",
    "/thi/bai-thi": "exam_room.exam",
    "/thi/xem-lai": "exam_room.review",
    "/thi/ket-qua": "exam_room.result",
}
EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <script> blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "script":
            self._script = attributes
            self.scripts.append((attributes, ""))

    def handle_data(self, data):
        if self._script is not None:
            attributes, text = self.scripts[-1]
            self.scripts[-1] = (attributes, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


@pytest.mark.parametrize("url", PAGES)
def test_page_renders_uncached_in_vietnamese(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert "Thi tuyển công chức" in html  # diacritics arrive intact (UTF-8)
    assert 'class="navbar' not in html  # the candidate layout, not the staff one


def test_every_page_is_marked_candidate_facing(app):
    for endpoint in PAGES.values():
        assert getattr(app.view_functions[endpoint], "candidate_facing", False), endpoint
    served = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("exam_room.")}
    assert served == set(PAGES.values())


def test_pages_hold_no_candidate_data(app, client, db):
    exam = make_exam(db)
    sitting = make_sitting(db, exam)
    candidates = make_candidates(db, exam, 3, sitting=sitting)
    db.commit()
    secrets = [exam.seed, sitting.access_secret]
    for candidate in candidates:
        secrets += [candidate.registration_no, candidate.full_name, candidate.citizen_id,
                    candidate.date_of_birth.isoformat(), candidate.date_of_birth.strftime("%d/%m/%Y")]
    for url in PAGES:
        html = client.get(url).get_data(as_text=True)
        for secret in secrets:
            assert secret not in html, f"{url} shows {secret!r}"
        assert exam.code not in html and exam.title not in html, url


@pytest.mark.parametrize("url", PAGES)
def test_assets_are_ours_and_served(client, url):
    html = client.get(url).get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    tags = parse(html)
    assets = [a["src"] for t, a in tags.tags if t == "script" and "src" in a]
    assets += [a["href"] for t, a in tags.tags if t == "link" and a.get("rel") == "stylesheet"]
    assert any(path.endswith("/exam_room.css") for path in assets)
    assert any(path.endswith("/exam_room_core.js") for path in assets)
    for path in assets:
        assert path.startswith("/static/"), path
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.get_data(as_text=True)
        response.close()
        assert not re.search(r"https?://", body), f"{path} refers to another host"


def test_no_template_loads_anything_from_another_host():
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        for number, line in enumerate(template.read_text(encoding="utf-8").splitlines(), start=1):
            if EXTERNAL.search(line):
                offenders.append(f"{template.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("url", PAGES)
def test_pages_keep_to_the_content_security_policy(client, url):
    response = client.get(url)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    tags = parse(response.get_data(as_text=True))
    for attributes, text in tags.scripts:
        if "src" in attributes:
            assert not text.strip()
        else:  # only data blocks: JSON is not executed, so the CSP allows it
            assert attributes.get("type") == "application/json", attributes
            json.loads(text)
    for tag, attributes in tags.tags:
        assert "style" not in attributes, f"<{tag} style=...> on {url}"
        assert not [name for name in attributes if name.startswith("on")], f"<{tag}> event handler on {url}"
    assert not any(tag == "style" for tag, _ in tags.tags)


def test_script_texts_and_addresses_come_from_the_server(client):
    tags = parse(client.get("/thi/bai-thi").get_data(as_text=True))
    blocks = {attributes["id"]: json.loads(text) for attributes, text in tags.scripts if "id" in attributes}
    messages, config = blocks["i18n"], blocks["exam-room-config"]
    assert messages["saved"] == "Đã lưu"
    assert messages["saving"] == "Đang lưu…"
    assert messages["offline"] == "Mất kết nối — câu trả lời được giữ lại và sẽ gửi khi có mạng"
    assert messages["confirm_submit"] == "Bạn chắc chắn muốn nộp bài? Sau khi nộp không thể sửa."
    assert all(isinstance(value, str) and value for value in messages.values())
    assert config["api"] == "/api/v1"
    assert config["pages"] == {"sign_in": "/thi/", "instructions": "/thi/huong-dan", "exam": "/thi/bai-thi",
                               "review": "/thi/xem-lai", "result": "/thi/ket-qua"}


def test_language_switch_reaches_the_candidate_pages(client):
    client.get("/lang/en")
    html = client.get("/thi/").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert 'href="/lang/vi?next=' in html  # the way back to Vietnamese


def test_the_exam_page_has_its_controls(client):
    html = client.get("/thi/bai-thi").get_data(as_text=True)
    ids = {attributes.get("id") for _, attributes in parse(html).tags}
    for needed in ("er-timer", "er-save", "er-q-number", "er-option-list", "er-flag", "er-prev", "er-next",
                   "er-navigator", "er-end-section", "er-review", "er-confirm"):
        assert needed in ids, needed
    assert 'role="timer"' in html and 'aria-live="polite"' in html
