"""Merit lists in the database: the ranking rule, tie decisions, publication freezing the list, reading it back
after migration 0004."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text

from exam.audit.models import AuditEntry
from exam.core import schema
from exam.grading import runs as results
from exam.grading.models import CandidateScore
from exam.merit import lists as merit_lists
from exam.merit.models import MeritList, TieDecision
from exam.merit.outside_scores import import_scores
from exam.merit.rule import MeritRejected
from exam.setup.models import Paper
from exam.setup.spec import read_spec_toml, spec_from_toml, spec_to_toml
from tests.merit.helpers import ACCOUNTS, LAW, T0, correct_the_key, make_round, round2_csv, spec_toml

LATER = T0 + timedelta(days=20)


def tied_round(db):
    """A round whose draft list has a tie for the last place of LAW: TS01 and TS02 at rank 2 of 2."""
    found = make_round(db)
    correct_the_key(db, found)
    results.grade_exam(db, found.exam, actor="hoidong", now=T0 + timedelta(days=4))
    record = merit_lists.build_merit_list(db, found.exam, "hoidong", T0 + timedelta(days=11))
    assert merit_lists.lists_of(record)[LAW].ties
    return found, record


def test_the_list_ranked_while_the_grading_analyses_items_is_the_list_built_after(db):
    """``grade_exam(meanwhile=draft_content)`` + ``store_draft`` (the list ranked while the item analysis
    computes in a worker thread) stores what ``grade_exam`` + ``build_merit_list`` stores, audited in the
    same order: the grading, then the list."""
    found = make_round(db)
    correct_the_key(db, found)
    now = T0 + timedelta(days=4)
    outcome = results.grade_exam(db, found.exam, actor="hoidong", now=now)
    built = merit_lists.build_merit_list(db, found.exam, "hoidong", now, scores=outcome.table)
    content, digest, stats = built.content, built.hash, outcome.run.summary["test"]

    outcome = results.grade_exam(db, found.exam, actor="hoidong", now=now, meanwhile=lambda graded: (
        merit_lists.draft_content(db, found.exam, scores=graded.table)))
    assert isinstance(outcome.meanwhile, merit_lists.DraftContent)
    record = merit_lists.store_draft(db, found.exam, outcome.meanwhile, "hoidong", now)
    assert (record.content, record.hash) == (content, digest)
    assert record.grading_run_id == outcome.run.id
    assert outcome.run.summary["test"] == stats
    last = db.scalars(select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(2)).all()
    assert last == ["merit.build", "exam.grade"]


# --- the ranking rule ------------------------------------------------------------------------------

def test_the_exam_toml_ranking_table_is_checked_with_keys_and_round_trips():
    spec, errors = spec_from_toml(spec_toml())
    assert errors == [] and spec.ranking == {"preset": "civil_service", "quota": {LAW: 2, ACCOUNTS: 1}}
    assert spec_from_toml(spec_to_toml(spec)) == (spec, [])
    bad = read_spec_toml(spec_toml('\n[ranking]\npreset = "mien_thi"\ntie_break = ["full_name"]\n'
                                   '[ranking.quota]\n"Kế toán" = 0\n'))
    assert bad.spec is None
    assert {e.key for e in bad.errors} == {"ranking.preset", "ranking.score", "ranking.tie_break[0]",
                                             'ranking.quota."Kế toán"'}
    assert spec_from_toml(spec_toml(""))[0].ranking is None


def test_without_a_rule_the_preset_needs_a_quota_per_post(db):
    found = make_round(db)
    found.exam.ranking = None
    with pytest.raises(MeritRejected) as refused:
        merit_lists.build_merit_list(db, found.exam, "hoidong", LATER)
    assert {p.key for p in refused.value.problems} == {f'ranking.quota."{LAW}"', f'ranking.quota."{ACCOUNTS}"'}


def test_the_rule_is_set_from_toml_until_a_list_is_published(db):
    found = make_round(db)
    exam = found.exam
    data, errors = merit_lists.read_ranking_toml('[ranking]\nmin_score = "năm mươi"\n')
    assert data is None and {e.key for e in errors} == {"ranking.min_score", "ranking.score"}
    data, errors = merit_lists.read_ranking_toml(f'preset = "civil_service"\nmin_score = 75\n'
                                                 f'[quota]\n"{LAW}" = 1\n"{ACCOUNTS}" = 1\n')
    assert errors == []
    merit_lists.set_ranking(db, exam, data, actor="hoidong", now=LATER)
    assert merit_lists.ranking_rule(exam)[0].min_score == 75
    assert 'min_score = 75' in merit_lists.ranking_toml(exam)
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "ranking.update")).one()
    assert json.loads(entry.details)["ranking"] == data
    record = merit_lists.build_merit_list(db, exam, "hoidong", LATER)
    law = merit_lists.lists_of(record)[LAW]
    assert law.row("TS03").reasons[0].code == "round2_below_min"  # 70 < 75: the bonus cannot rescue it
    assert [t.registration_nos for t in law.ties] == [("TS01", "TS02")]  # one place now
    merit_lists.publish_merit_list(db, exam, actor="hoidong", now=LATER, allow_unresolved_ties=True)
    with pytest.raises(merit_lists.MeritListError, match="published"):
        merit_lists.set_ranking(db, exam, data, actor="hoidong", now=LATER)


# --- tie decisions ---------------------------------------------------------------------------------

def test_tie_decisions_must_fill_the_places_left_with_a_reason(db):
    found, record = tied_round(db)
    exam = found.exam
    with pytest.raises(MeritRejected) as refused:
        merit_lists.decide_tie(db, exam, post=LAW, decisions={"TS01": "selected", "TS02": "selected"},
                               reason="Hội đồng họp và thống nhất chọn cả hai.", actor="hoidong", now=LATER)
    assert "2 selected for 1 place(s)" in str(refused.value)
    with pytest.raises(MeritRejected, match="undecided: TS02"):
        merit_lists.decide_tie(db, exam, post=LAW, decisions={"TS01": "selected"},
                               reason="Hội đồng họp và thống nhất.", actor="hoidong", now=LATER)
    with pytest.raises(MeritRejected, match="not in an unresolved tie"):
        merit_lists.decide_tie(db, exam, post=LAW, decisions={"TS01": "selected", "TS02": "not_selected",
                                                                  "TS03": "not_selected"},
                               reason="Hội đồng họp và thống nhất.", actor="hoidong", now=LATER)
    with pytest.raises(merit_lists.MeritListError, match="reason"):
        merit_lists.decide_tie(db, exam, post=LAW, decisions={"TS01": "selected", "TS02": "not_selected"},
                               reason="  ", actor="hoidong", now=LATER)
    assert db.scalar(select(func.count()).select_from(TieDecision)) == 0

    reason = "Biên bản họp Hội đồng số 12: thí sinh TS02 có thành tích công tác nổi bật hơn."
    record = merit_lists.decide_tie(db, exam, post=LAW, decisions={"TS01": "not_selected", "TS02": "selected"},
                                    reason=reason, actor="hoidong", now=LATER)
    law = merit_lists.lists_of(record)[LAW]
    assert not law.ties and law.decisions[0].selected == ("TS02",) and law.decisions[0].reason == reason
    assert (law.row("TS02").status, law.row("TS02").decided_by_board) == ("selected", True)
    assert law.row("TS01").status == "not_selected"
    rows = db.scalars(select(TieDecision).order_by(TieDecision.candidate_id)).all()
    assert [(r.post, r.decision, r.reason, r.decided_by) for r in rows] == [
        (LAW, "not_selected", reason, "hoidong"), (LAW, "selected", reason, "hoidong")]
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "merit.decide")).one()
    assert json.loads(entry.details)["ties"] == [{"rank": 2, "places": 1, "selected": ["TS02"],
                                                  "not_selected": ["TS01"]}]
    assert json.loads(entry.details)["hash"] == record.hash

    # A rebuild keeps the decision while the same candidates are tied for the same place; then the list
    # publishes without any pending tie.
    rebuilt = merit_lists.build_merit_list(db, exam, "hoidong", LATER + timedelta(hours=1))
    assert rebuilt.hash == record.hash
    assert not merit_lists.staleness(db, exam, rebuilt).stale
    merit_lists.publish_merit_list(db, exam, actor="hoidong", now=LATER + timedelta(hours=2))


def test_a_decision_made_for_another_tie_is_not_applied(db):
    found, record = tied_round(db)
    merit_lists.decide_tie(db, found.exam, post=LAW, decisions={"TS01": "selected", "TS02": "not_selected"},
                           reason="Biên bản họp Hội đồng số 12.", actor="hoidong", now=LATER)
    # TS03 joins the tie (80 in round 2, no priority any more): the decision was for two, not for three.
    candidate = found.candidates["TS03"]
    candidate.priority_category = ""
    import_scores(db, found.exam, "sua.csv", round2_csv({"TS03": "80"}), actor="hoidong", now=LATER)
    rebuilt = merit_lists.build_merit_list(db, found.exam, "hoidong", LATER + timedelta(hours=1))
    law = merit_lists.lists_of(rebuilt)[LAW]
    assert [t.registration_nos for t in law.ties] == [("TS01", "TS02", "TS03")]
    assert not law.decisions


# --- publication -----------------------------------------------------------------------------------

def test_publishing_freezes_the_list(db):
    found, record = tied_round(db)
    exam = found.exam
    merit_lists.decide_tie(db, exam, post=LAW, decisions={"TS01": "selected", "TS02": "not_selected"},
                           reason="Biên bản họp Hội đồng số 12.", actor="hoidong", now=LATER)
    published = merit_lists.publish_merit_list(db, exam, actor="hoidong", now=LATER)
    frozen_content, frozen_hash = published.content, published.hash
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "merit.publish")).one()
    assert json.loads(entry.details)["hash"] == frozen_hash and json.loads(entry.details)["unresolved_ties"] == []

    # Later: new round-2 scores and a regrade. The published list does not move; a new build is refused.
    import_scores(db, exam, "sua.csv", round2_csv({"TS07": "99"}), actor="hoidong", now=LATER + timedelta(days=1))
    results.grade_exam(db, exam, actor="hoidong", now=LATER + timedelta(days=1))
    with pytest.raises(merit_lists.MeritListError, match="already published"):
        merit_lists.build_merit_list(db, exam, "hoidong", LATER + timedelta(days=1))
    with pytest.raises(merit_lists.MeritListError, match="published"):
        merit_lists.decide_tie(db, exam, post=LAW, decisions={}, reason="x" * 20, actor="hoidong", now=LATER)
    with pytest.raises(merit_lists.MeritListError, match="already published"):
        merit_lists.publish_merit_list(db, exam, actor="hoidong", now=LATER)
    db.flush()
    db.expire_all()
    stored = merit_lists.published_list(db, exam)
    assert (stored.content, stored.hash) == (frozen_content, frozen_hash)
    standing = merit_lists.standing(db, exam, "TS07")
    assert (standing.row.rank, standing.row.status, standing.row.total) == (2, "not_selected", 78.0)
    assert merit_lists.current_list(db, exam).id == published.id
    assert db.scalar(select(func.count()).select_from(MeritList)) == 1


def test_an_altered_stored_list_is_caught_by_its_hash(db):
    found, record = tied_round(db)
    content = json.loads(record.content)
    content["lists"][0]["columns"]["rank"][0] = 99  # a rank changed behind the system's back
    record.content = json.dumps(content)
    db.flush()
    with pytest.raises(merit_lists.MeritListError, match="does not match its hash"):
        merit_lists.lists_of(record)


def test_the_board_order_of_posts_and_post_names_matched_loosely(db):
    found, record = tied_round(db)
    lists = merit_lists.lists_of(record)
    assert list(lists) == [LAW, ACCOUNTS]
    assert merit_lists.find_post(lists, "  kế TOÁN   viên ").post == ACCOUNTS
    with pytest.raises(merit_lists.MeritListError, match="no post"):
        merit_lists.export_list(db, found.exam, "x.csv", post="Văn thư")


def test_migration_0004_converts_scores_papers_and_lists_and_back(app, db):
    """Down to 0003 (scores as JSON, no option orders, the list as a JSON column written the old way) and up
    again: the packed scores, the papers' option orders and the list's canonical text come back the same, and
    the list still matches its hash."""
    found, record = tied_round(db)
    merit_lists.publish_merit_list(db, found.exam, actor="hoidong", now=LATER, allow_unresolved_ties=True)
    db.commit()
    exam_id, list_id, digest, content = found.exam.id, record.id, record.hash, record.content
    scores = results.stored_scores(db, found.exam).records()
    packed = dict(db.execute(select(CandidateScore.candidate_id, CandidateScore.section_results)).all())
    orders = dict(db.execute(select(Paper.id, Paper.option_orders)).all())
    db.close()
    engine = app.extensions["exam_db"].engine
    command.downgrade(schema.alembic_config(engine), "0003")
    with engine.begin() as conn:
        old = dict(conn.execute(text("SELECT candidate_id, sections FROM candidate_score")).all())
        old = {cid: json.loads(value) if isinstance(value, str) else value for cid, value in old.items()}
        assert {cid: [{k: s[k] for k in ("code", "correct", "questions", "answered", "passed")} for s in v]
                for cid, v in old.items()} == \
            {cid: [{k: s[k] for k in ("code", "correct", "questions", "answered", "passed")} for s in r["sections"]]
             for cid, r in scores.items()}
        # As SQLAlchemy's JSON column wrote it before: not the canonical text.
        conn.execute(text("UPDATE merit_list SET content = :c WHERE id = :i"),
                     {"c": json.dumps(json.loads(content)), "i": list_id})
    schema.upgrade(engine)
    session = app.extensions["exam_db"].sessionmaker()
    try:
        assert dict(session.execute(select(CandidateScore.candidate_id, CandidateScore.section_results)).all()) \
            == packed
        assert dict(session.execute(select(Paper.id, Paper.option_orders)).all()) == orders
        stored = session.get(MeritList, list_id)
        assert (stored.content, stored.hash) == (content, digest)
        exam = session.get(type(found.exam), exam_id)
        assert results.stored_scores(session, exam).records() == scores
        assert merit_lists.lists_of(stored)[LAW].ties
    finally:
        session.close()
