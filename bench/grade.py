"""Grading benchmark: a synthetic exam of 100,000 candidates × 120 questions, from the database
to a published-ready merit list and the item analysis.

    .venv/bin/python bench/grade.py [--candidates 100000] [--paper-items] [--skip-merit] [--keep DIR]
    .venv/bin/python bench/grade.py --candidates 1000000
    .venv/bin/python bench/grade.py --reuse DIR [--whole-only]    # a database kept with --keep DIR

``--whole-only`` with ``--reuse`` times the whole path alone in a fresh process, as
``flask --app wsgi exam grade EXAM --merit`` runs it (after the build and the separate steps, a
million candidates' worth of freed memory makes the whole path a few seconds slower).

(Run it under the benchmarks' lock on a shared machine: ``flock /tmp/bench.lock .venv/bin/python ...``.)

Builds a throw-away SQLite database (in a temporary folder) directly with bulk inserts: 300
question versions (4 options, 8 % of them multiple-answer with two keys), one published exam
of 3 sections (60 / 30 / 30 questions, each from a pool of 150 / 75 / 75 versions, marks 1,
pass at 50 %), candidates in two posts, and for each a paper (``key_masks`` and
``version_ids`` filled: each paper draws its own questions, in its own order, with its own
option order) and a submitted attempt (``choice_masks`` filled). Answers follow a logistic
model (ability × question difficulty) tuned so totals centre near 60 % with a realistic
spread; 4 % of the questions are left blank.

Each paper's ``option_orders`` column holds the index of each position's option order (as
paper generation stores it), which is what the item analysis reads. With ``--paper-items``
the papers are stored as before migration 0004 instead: ``option_orders`` left empty and the
``paper_item`` rows written (12 million for 100,000 candidates, minutes to build), so the
item analysis falls back to reading the orders from them.

Then it times, each in its own transaction (wall clock, and the process's CPU time: when the
second figure is well below the first, something else held the cores):

* load: the compact columns of every submitted attempt into [C × Q] arrays (and the pool);
* grade: the one scoring rule (``grading.grade``) over the whole exam;
* write: the grading run, 100,000 ``candidate_score`` rows and the audit entry;
* item analysis: the option orders, ``item_analysis.analyse_cells`` over each candidate's cells
  (+ storing the statistics);
* ranking: ``merit_lists.build_merit_list`` from the database (reads the stored scores and the
  roster, ranks, stores the draft list as canonical JSON with its hash);
* the whole path: ``grade_exam`` (load, grade, write, item analysis) + the merit list built from
  the scores just graded (handed over in memory, as ``exam grade --merit`` does) + commit. The
  list is ranked (``merit_lists.draft_content``) as ``grade_exam``'s ``meanwhile``, while the item
  analysis computes on the other core, and stored after (``merit_lists.store_draft``).
"""
from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/grade.py` from anywhere: the project is not installed

from exam.app import create_app  # noqa: E402  (after the path above)
from exam.core import schema  # noqa: E402
from exam.core.db import force_immediate, get_session  # noqa: E402
from exam.grading import item_stats  # noqa: E402
from exam.grading import runs as results  # noqa: E402
from exam.grading.scoring import grade  # noqa: E402
from exam.merit import lists as merit_list_rules  # noqa: E402

SECTIONS = (("general", "Kiến thức chung", 60, 150), ("language", "Ngoại ngữ", 30, 75),
            ("informatics", "Tin học", 30, 75))
OPTIONS = 4
MULTIPLE_SHARE = 0.08
BLANK_SHARE = 0.04
POSTS = {"Chuyên viên": 0.7, "Cán sự": 0.3}
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
CHUNK = 20_000


def permutations(n: int) -> np.ndarray:
    """Every order of n options: [n!, n], row p = the author's index of each displayed option."""
    from itertools import permutations as perms

    return np.array(list(perms(range(n))), dtype=np.int64)


def displayed_table(orders: np.ndarray) -> np.ndarray:
    """[P, 256]: author's mask → displayed mask, for each order."""
    masks = np.arange(256, dtype=np.int64)
    table = np.zeros((len(orders), 256), dtype=np.uint8)
    for p, order in enumerate(orders):
        bits = np.zeros(256, dtype=np.int64)
        for j, original in enumerate(order):
            bits |= ((masks >> original) & 1) << j
        table[p] = bits
    return table


class Synthetic:
    """Papers and answers for C candidates, drawn with numpy."""

    def __init__(self, candidates: int, n_versions: int, seed: int = 2026):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.version_ids = np.zeros(n_versions, dtype=np.int64)  # set once the versions are stored
        self.multiple = rng.random(n_versions) < MULTIPLE_SHARE
        first = rng.integers(0, OPTIONS, n_versions)
        second = (first + rng.integers(1, OPTIONS, n_versions)) % OPTIONS
        self.author_key = ((1 << first) | np.where(self.multiple, 1 << second, 0)).astype(np.uint8)
        self.difficulty = rng.normal(0.0, 1.0, n_versions)
        self.orders = permutations(OPTIONS)
        self.to_displayed = displayed_table(self.orders)
        self.candidates = candidates

        # Questions: per section, each candidate draws its count from the section's pool, in random order.
        columns, start = [], 0
        for _, _, count, pool in SECTIONS:
            draw = np.argsort(rng.random((candidates, pool), dtype=np.float32), axis=1)[:, :count]
            columns.append(draw + start)
            start += pool
        self.pool_rows = np.concatenate(columns, axis=1)  # [C, Q] index into the versions
        q = self.pool_rows.shape[1]
        self.perm = rng.integers(0, len(self.orders), (candidates, q)).astype(np.int32)
        key = self.author_key[self.pool_rows]
        self.key = self.to_displayed[self.perm, key]

        # Answers: logistic in (ability − difficulty), centred so the mean is near 60 %.
        ability = rng.normal(0.0, 1.0, candidates)
        logit = 1.1 * (ability[:, None] - self.difficulty[self.pool_rows]) + 0.5
        right = rng.random((candidates, q), dtype=np.float32) < 1.0 / (1.0 + np.exp(-logit))
        blank = rng.random((candidates, q), dtype=np.float32) < BLANK_SHARE
        # A wrong answer: one of the options outside the key, uniformly (author's order).
        outside = np.zeros((256, OPTIONS), dtype=np.uint8)  # [key mask, r] → the r-th option outside the key
        spare = np.zeros(256, dtype=np.int64)
        for mask in range(1 << OPTIONS):
            free = [j for j in range(OPTIONS) if not (mask >> j) & 1]
            spare[mask] = len(free)
            outside[mask, :len(free)] = [1 << j for j in free]
        pick = (rng.random((candidates, q), dtype=np.float32) * spare[key]).astype(np.int64)
        wrong_author = outside[key, pick]
        wrong = self.to_displayed[self.perm, wrong_author]
        self.chosen = np.where(right, self.key, np.where(blank, 0, wrong)).astype(np.uint8)


def build(app, candidates: int, paper_items: bool) -> tuple[str, Synthetic, dict[str, float]]:
    from exam.room.models import Attempt
    from exam.setup.models import BlueprintCell, Candidate, Exam, ExamPool, ExamSection, Paper
    from question_bank.models import Question, QuestionVersion, Topic

    timings = {}
    started = time.perf_counter()
    with app.app_context():
        token = force_immediate.set(True)
        db = get_session()
        topic = Topic(name="Bench", path="Bench", created_at=NOW)
        db.add(topic)
        db.flush()
        n_versions = sum(pool for *_, pool in SECTIONS)
        questions = [Question(topic_id=topic.id, status="active", difficulty="medium", qtype="single",
                              search_text=f"q{i}", dedup_key=f"{i:064d}", created_at=NOW, updated_at=NOW)
                     for i in range(n_versions)]
        db.add_all(questions)
        db.flush()
        synthetic = Synthetic(candidates, n_versions)
        for question, multiple in zip(questions, synthetic.multiple, strict=True):
            question.qtype = "multiple" if multiple else "single"
        version_rows = [QuestionVersion(question_id=q.id, number=1, topic_id=topic.id, difficulty="medium",
                                        qtype=q.qtype, text=f"Câu hỏi {i}", created_at=NOW, created_by="bench",
                                        options=[{"text": f"Phương án {j}", "correct": bool((int(key) >> j) & 1)}
                                                 for j in range(OPTIONS)], frozen=True)
                        for i, (q, key) in enumerate(zip(questions, synthetic.author_key, strict=True))]
        db.add_all(version_rows)
        db.flush()
        synthetic.version_ids[:] = [v.id for v in version_rows]
        for question, version in zip(questions, version_rows, strict=True):
            question.current_version_id = version.id
        exam = Exam(code="BENCH", title="Kỳ thi thử tải chấm điểm", status="published", seed=secrets.token_hex(32),
                    forms=0, spec={}, created_at=NOW, created_by="bench", published_at=NOW, published_by="bench",
                    ranking={"score": "round1_total", "require_round1_sections_passed": True, "tie_break": [],
                             "quota": {post: max(1, int(candidates * share * 0.05)) for post, share in POSTS.items()}})
        start = 0
        for position, (code, title, count, pool) in enumerate(SECTIONS, start=1):
            section = ExamSection(position=position, code=code, title=title, minutes=count, question_count=count)
            cell = BlueprintCell(topic_id=topic.id, difficulty="any", count=count)
            section.cells.append(cell)
            exam.sections.append(section)
            db.add(exam)
            db.flush()
            db.execute(insert(ExamPool), [{"cell_id": cell.id, "question_version_id": v.id}
                                          for v in version_rows[start:start + pool]])
            start += pool
        db.flush()
        exam_id = exam.id
        section_ids = [s.id for s in exam.sections]
        db.commit()

        posts = list(POSTS)
        shares = np.cumsum(list(POSTS.values()))
        post_of = np.searchsorted(shares, synthetic.rng.random(candidates))
        version_ids = synthetic.version_ids[synthetic.pool_rows].astype("<i4")
        # The generator's orders are itertools.permutations(range(4)) in order: its index is the stored one.
        option_orders = synthetic.perm.astype("<u2")
        conn = db.connection()
        for first in range(0, candidates, CHUNK):
            last = min(first + CHUNK, candidates)
            rows = [{"exam_id": exam_id, "registration_no": f"BN{i + 1:07d}", "full_name": f"Thí Sinh {i + 1}",
                     "date_of_birth": date(1990, 1, 1) + timedelta(days=i % 7000), "citizen_id": f"{i:012d}",
                     "post": posts[min(post_of[i], len(posts) - 1)], "priority_category": "", "created_at": NOW}
                    for i in range(first, last)]
            conn.execute(insert(Candidate), rows)
        candidate_ids = [cid for (cid,) in conn.execute(select(Candidate.id).where(Candidate.exam_id == exam_id)
                                                        .order_by(Candidate.registration_no))]
        for first in range(0, candidates, CHUNK):
            last = min(first + CHUNK, candidates)
            conn.execute(insert(Paper), [
                {"exam_id": exam_id, "candidate_id": candidate_ids[i], "slot": i + 1, "content_hash": "0" * 64,
                 "created_at": NOW, "key_masks": synthetic.key[i].tobytes(), "version_ids": version_ids[i].tobytes(),
                 "option_orders": None if paper_items else option_orders[i].tobytes()}
                for i in range(first, last)])
        paper_ids = dict(conn.execute(select(Paper.candidate_id, Paper.id).where(Paper.exam_id == exam_id)).all())
        for first in range(0, candidates, CHUNK):
            last = min(first + CHUNK, candidates)
            conn.execute(insert(Attempt), [
                {"public_id": secrets.token_hex(12), "candidate_id": candidate_ids[i],
                 "paper_id": paper_ids[candidate_ids[i]], "status": "submitted", "started_at": NOW,
                 "deadline": NOW + timedelta(hours=2), "submitted_at": NOW + timedelta(hours=2),
                 "submitted_by": "candidate", "choice_masks": synthetic.chosen[i].tobytes()}
                for i in range(first, last)])
        if paper_items:
            section_of = np.repeat(section_ids, [count for _, _, count, _ in SECTIONS])
            order_json = [json.dumps(o.tolist(), separators=(",", ":")) for o in synthetic.orders]
            ids_json = json.dumps([f"{j:012x}" for j in range(OPTIONS)], separators=(",", ":"))
            raw = conn.connection.driver_connection
            cursor = raw.cursor()
            for i in range(candidates):
                paper_id = paper_ids[candidate_ids[i]]
                cursor.executemany(
                    "INSERT INTO paper_item (paper_id, position, section_id, question_version_id, public_id, "
                    "option_order, option_ids) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(paper_id, q + 1, int(section_of[q]), int(version_ids[i, q]), f"{paper_id:08x}{q:08x}",
                      order_json[synthetic.perm[i, q]], ids_json) for q in range(version_ids.shape[1])])
        db.commit()
        force_immediate.reset(token)
    timings["build"] = time.perf_counter() - started
    return "BENCH", synthetic, timings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--paper-items", action="store_true", help="also write paper_item rows (slow to build)")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    parser.add_argument("--skip-merit", action="store_true", help="leave the merit list out")
    parser.add_argument("--reuse", type=Path, help="time the database kept in this folder (--keep) instead of "
                                                   "building one")
    parser.add_argument("--whole-only", action="store_true", help="time the whole path only (in a fresh process "
                                                                  "with --reuse, as `exam grade --merit` runs)")
    args = parser.parse_args(argv)

    merit_lists = None if args.skip_merit else merit_list_rules

    folder = args.reuse or args.keep or Path(tempfile.mkdtemp(prefix="bench-grade-"))
    folder.mkdir(parents=True, exist_ok=True)
    app = create_app({"SECRET_KEY": "bench", "ATTEMPT_SWEEPER": False,
                      "DATABASE_URL": f"sqlite:///{folder / 'exam.sqlite3'}"}, instance_path=str(folder))
    schema.upgrade(app.extensions["exam_db"].engine)
    code = "BENCH"
    if args.reuse is None:
        code, synthetic, timings = build(app, args.candidates, args.paper_items)
        size = (folder / "exam.sqlite3").stat().st_size
        print(f"built {args.candidates:,} candidates × {synthetic.pool_rows.shape[1]} questions "
              f"({len(synthetic.version_ids)} pool versions) in {timings['build']:.1f} s; database "
              f"{size / 2**20:.0f} MiB")
        del synthetic  # gigabytes of generator arrays for a million: a server holds nothing of the kind
    else:
        print(f"the database kept in {folder}")

    def step(label, fn, *, commit=False):
        with app.app_context():
            token = force_immediate.set(True)
            db = get_session()
            db.execute(text("SELECT 1"))  # the connection and its BEGIN are not what we time
            from exam.setup.exams import exam_by_code
            exam = exam_by_code(db, code)
            exam.sections  # noqa: B018  (loaded before the clock starts)
            started, cpu = time.perf_counter(), time.process_time()
            value = fn(db, exam)
            if commit:
                db.commit()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            force_immediate.reset(token)
        print(f"  {label:<62} {elapsed:7.3f} s  (CPU {cpu:.3f} s)")
        return value, elapsed

    def run_whole():
        def whole(db, exam):
            started = time.perf_counter()
            ranked = (lambda outcome: merit_lists.draft_content(db, exam, scores=outcome.table)) \
                if merit_lists is not None else None
            run = results.grade_exam(db, exam, actor="bench", now=NOW, meanwhile=ranked)
            run.timings["grade_exam (all, meanwhile the merit list ranked)"] = time.perf_counter() - started
            started = time.perf_counter()
            record = merit_lists.store_draft(db, exam, run.meanwhile, "bench", NOW) \
                if merit_lists is not None else None
            run.timings["merit list stored"] = time.perf_counter() - started
            started = time.perf_counter()
            db.commit()
            run.timings["commit"] = time.perf_counter() - started
            return run, record

        (run, record), total = step("WHOLE PATH: grade_exam + item analysis + merit list + commit", whole)
        print("      " + ", ".join(f"{k} {v:.3f} s" for k, v in run.timings.items()))
        print(f"      run {run.run.id}: outputs {run.outputs_hash[:16]}…; merit list "
              f"{record.hash[:16] + '…' if record is not None else 'n/a'}")

    if args.whole_only:
        run_whole()
        return
    print("steps, each in its own transaction:")
    loaded, _ = step("load: compact columns → [C × Q] arrays (+ pool)", lambda db, exam: results._load(db, exam))
    arrays = loaded.arrays
    assert arrays.rebuilt_rows == 0 and (args.reuse or arrays.compact_rows == args.candidates)
    print(f"      of which reading the rows {loaded.timings['load']:.3f} s, inputs hash "
          f"{loaded.timings['inputs_hash']:.3f} s")
    graded, _ = step("grade: grading.grade over the whole exam",
                     lambda db, exam: grade(arrays.key, arrays.chosen, False, arrays.section, loaded.rules))
    mean = graded.total.mean() / arrays.shape[1]
    print(f"      mean {mean:.1%} of the marks, SD {graded.total.std():.1f} points, "
          f"{graded.passed_all.mean():.1%} passed every section")
    outcome, _ = step("grade_exam, write scores (no item analysis)",
                      lambda db, exam: results.grade_exam(db, exam, actor="bench", now=NOW, item_analysis=False),
                      commit=True)
    print("      " + ", ".join(f"{k} {v:.3f} s" for k, v in outcome.timings.items()))
    orders, _ = step("item analysis: option orders (" + ("paper_item rows" if args.paper_items else
                                                        "paper.option_orders") + ")",
                     lambda db, exam: item_stats.option_orders(db, outcome))
    step("item analysis: cells chunk by chunk → analyse_cells (numpy)",
         lambda db, exam: item_stats.analyse_outcome(outcome, orders, exam=exam))
    step("item analysis: orders + analysis + store item_statistic", lambda db, exam: item_stats.record_item_analysis(
        db, exam, outcome, run=outcome.run, now=NOW), commit=True)
    loaded = arrays = graded = outcome = orders = None  # the whole path below starts from nothing in memory
    if merit_lists is not None:
        step("ranking: merit_lists.build_merit_list (DB → draft list + hash)",
             lambda db, exam: merit_lists.build_merit_list(db, exam, "bench", NOW), commit=True)
    else:
        print("  ranking: skipped (--skip-merit)")

    run_whole()
    if args.keep is None and args.reuse is None:
        import shutil
        app.extensions["exam_db"].engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
