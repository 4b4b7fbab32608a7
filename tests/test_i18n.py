"""Vietnamese by default, English on request; every interface string has its English translation."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "translations" / "en" / "LC_MESSAGES"


def source_messages() -> set[str]:
    method_map = [("exam/**.py", "python"), ("question_bank/**.py", "python"), ("proctor/**.py", "python"),
                  ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_string_has_an_english_translation():
    with open(CATALOG / "messages.po", "rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string}
    missing = sorted(source_messages() - translated)
    assert not missing, "untranslated (run the pybabel steps in the README):\n" + "\n".join(missing)


def test_compiled_catalog_matches_po():
    with open(CATALOG / "messages.po", "rb") as fh:
        po = {m.id: m.string for m in read_po(fh) if m.id and m.string}
    with open(CATALOG / "messages.mo", "rb") as fh:
        mo = {m.id: m.string for m in read_mo(fh) if m.id and m.string}
    assert po == mo, "messages.mo is stale: run pybabel compile -d translations"


def test_vietnamese_by_default_and_english_on_request(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'lang="vi"' in page and "Đăng nhập cán bộ" in page
    client.get("/lang/en")
    page = client.get("/login").get_data(as_text=True)
    assert 'lang="en"' in page and "Staff sign-in" in page
    client.get("/lang/vi")
    assert "Đăng nhập cán bộ" in client.get("/login").get_data(as_text=True)


def test_unknown_language_is_404(client):
    assert client.get("/lang/fr").status_code == 404
