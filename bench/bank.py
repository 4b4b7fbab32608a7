"""Bank benchmark: import time of a 10,000-question XLSX file, and the bank page at 50,000 questions.

    .venv/bin/python bench/bank.py [--questions 50000] [--import-size 10000] [--database-url URL]

Builds a throw-away database (SQLite in a temporary folder unless --database-url is
given), generates questions from the demo bank's shapes, and prints the figures.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pyotp

# Run as python bench/bank.py, the script's folder is on sys.path, not the repo's packages: put the repo first.
# (ruff's E402 allows imports after a sys.path.insert, so no noqa is needed below.)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from exam.accounts import staff as accounts
from exam.app import create_app
from exam.core import schema
from exam.core.db import get_session, utcnow
from question_bank.formats import ParsedOption, ParsedQuestion, export_json, export_xlsx
from question_bank.importer import import_file
from question_bank.models import Topic

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "question_bank" / "demo" / "demo_bank.json"


def synthetic_questions(n: int, seed: int) -> list[ParsedQuestion]:
    """Questions shaped like the demo bank, each text made unique so none is a near-duplicate."""
    rng = random.Random(seed)
    demo = json.loads(DEMO.read_text(encoding="utf-8"))["questions"]
    questions = []
    for i in range(n):
        base = rng.choice(demo)
        questions.append(ParsedQuestion(
            location=f"question {i + 1}", topic=base["topic"], difficulty=base["difficulty"], type=base["type"],
            text=f"{base['text']} (biến thể {seed}-{i})",
            options=[ParsedOption(o["text"], o["correct"]) for o in base["options"]],
            explanation=base.get("explanation", ""), source=base.get("source", ""), tags=[f"bo-{i % 20}"]))
    return questions


def timed(label: str, fn, repeat: int = 1):
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    if repeat == 1:
        print(f"{label:<58} {times[0]:9.1f} ms")
    else:
        print(f"{label:<58} median {statistics.median(times):7.1f} ms  max {max(times):7.1f} ms  ({repeat} runs)")
    return result


def signed_in_client(app):
    with app.app_context():
        db = get_session()
        user = accounts.create_user(db, "bench-board", "bench-password-123", ["board"])
        user.totp_confirmed_at = utcnow()
        secret = user.totp_secret
        db.commit()
    client = app.test_client()

    def csrf(html):
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)

    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"csrf_token": csrf(page), "username": "bench-board",
                                "password": "bench-password-123"})
    page = client.get("/login/code").get_data(as_text=True)
    client.post("/login/code", data={"csrf_token": csrf(page),
                                     "code": pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))})
    assert client.get("/bank/").status_code == 200, "bench login failed"
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=50_000, help="bank size for the page timings")
    parser.add_argument("--import-size", type=int, default=10_000, help="questions in the timed XLSX import")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-bank-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    app = create_app({"DATABASE_URL": url}, instance_path=str(workdir / "instance"))
    schema.upgrade(app.extensions["exam_db"].engine)
    print(f"database: {app.extensions['exam_db'].engine.dialect.name}")

    xlsx = timed(f"build a {args.import_size:,}-question XLSX file",
                 lambda: export_xlsx(synthetic_questions(args.import_size, seed=1)))
    print(f"{'  file size':<58} {len(xlsx) / 1e6:9.2f} MB")
    with app.app_context():
        def run_import(content, name, dry_run=False):
            db = get_session()
            report = import_file(db, name, content, actor="bench", now=utcnow(), dry_run=dry_run,
                                 max_bytes=200 * 1024 * 1024)
            assert not report.errors, report.errors[:3]
            db.commit()
            return report

        timed(f"dry run of the {args.import_size:,}-question XLSX", lambda: run_import(xlsx, "bank.xlsx", True))
        report = timed(f"import of the {args.import_size:,}-question XLSX (parse+validate+write)",
                       lambda: run_import(xlsx, "bank.xlsx"))
        print(f"{'  questions added':<58} {report.added:9,d}")
        rest = args.questions - args.import_size
        if rest > 0:
            content = export_json(synthetic_questions(rest, seed=2))
            timed(f"fill the bank to {args.questions:,} questions (JSON import)",
                  lambda: run_import(content, "rest.json"))

    client = signed_in_client(app)
    pages = {
        "bank page, first page": "/bank/",
        "bank page, filter topic+difficulty": None,
        "bank page, text search 'hien phap' (no diacritics)": "/bank/?q=hien+phap",
        "bank page, text search, rare word": "/bank/?q=bi%E1%BA%BFn+th%E1%BB%83+2-39999",
        "bank page, tag filter": "/bank/?tag=bo-7",
    }
    with app.app_context():
        topic = get_session().scalar(select(Topic).where(Topic.path.like("%Hiến pháp%")))
    pages["bank page, filter topic+difficulty"] = f"/bank/?topic={topic.id}&difficulty=hard"
    for label, url in pages.items():
        timed(label, lambda url=url: client.get(url), repeat=20)
    # Walk 50 pages deep through the keyset cursor and time the last one.
    url = "/bank/"
    for _ in range(50):
        html = client.get(url).get_data(as_text=True)
        match = re.search(r'href="(/bank/\?[^"]*(?:after|cursor)=[^"]+)"', html)
        if not match:
            break
        url = match.group(1).replace("&amp;", "&")
    timed("bank page, 50 pages deep (keyset cursor)", lambda: client.get(url), repeat=20)


if __name__ == "__main__":
    main()
