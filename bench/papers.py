"""Paper benchmark: draw the papers of 2,000 candidates × 120 questions (examples/round1.toml, demo bank).

    .venv/bin/python bench/papers.py [--candidates 2000] [--database-url URL] [--repeat 1]

Builds a throw-away database (SQLite in a temporary folder unless --database-url is
given; a given PostgreSQL database is emptied first), imports the demo bank, creates
and publishes the round-1 exam, imports the roster, then times ``generate_papers``
(the draw and the inserts) and its commit separately, and a second run that only
checks the stored papers.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

# Run as python bench/papers.py, the script's folder is on sys.path, not the repo's packages: put the repo first.
# (ruff's E402 allows imports after a sys.path.insert, so no noqa is needed below.)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench.room import build_room
from exam.core.db import force_immediate, get_session, utcnow
from exam.setup import exams
from exam.setup.models import Paper, PaperItem
from exam.setup.papers import generate_papers


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--database-url")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of the draw")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-papers-") as tmp:
        room = build_room(Path(tmp), candidates=args.candidates, database_url=args.database_url,
                          with_sittings=False, draw_papers=False)
        app = room.app
        with app.app_context():
            token = force_immediate.set(True)
            db = get_session()
            exam = exams.exam_by_code(db, room.exam_code)
            profiler = cProfile.Profile() if args.profile else None
            started, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            run = generate_papers(db, exam, actor="bench", now=utcnow())
            if profiler:
                profiler.disable()
            drawn = time.perf_counter() - started
            db.commit()
            total, cpu = time.perf_counter() - started, time.process_time() - cpu
            items = db.scalar(select(func.count()).select_from(PaperItem))
            papers = db.scalar(select(func.count()).select_from(Paper))
            print(f"generate_papers: {run.created} papers, {items} items ({items // max(papers, 1)} per paper) "
                  f"in {drawn:.2f} s, commit {total - drawn:.2f} s, total {total:.2f} s (CPU {cpu:.2f} s) "
                  f"[{app.extensions['exam_db'].engine.dialect.name}]")
            started = time.perf_counter()
            again = generate_papers(db, exam, actor="bench", now=utcnow())
            db.rollback()
            print(f"second run (check only): {again.checked} checked in {time.perf_counter() - started:.2f} s")
            force_immediate.reset(token)
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        app.extensions["exam_db"].engine.dispose()


if __name__ == "__main__":
    main()
