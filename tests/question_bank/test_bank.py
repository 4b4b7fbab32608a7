"""The bank's rules, called directly: versions, retire/restore, NFC, near-duplicates, browse, search, topics."""
from __future__ import annotations

import json
import unicodedata

import pytest
from sqlalchemy import select

from exam.audit.models import AuditEntry
from question_bank import bank, browsing
from question_bank.browsing import BrowseFilters, browse
from question_bank.models import Question, QuestionTag, QuestionVersion, Topic
from tests.question_bank.conftest import draft


def actions(db, question_id) -> list[str]:
    return [e.action for e in browsing.audit_entries(db, question_id)]


# --- folding ---------------------------------------------------------------------------------------

def test_fold_keeps_diacritics_and_drops_case_and_punctuation():
    assert bank.fold("  Hiến   PHÁP, năm 2013!\n(Điều 1)… ") == "hiến pháp năm 2013 điều 1"
    assert bank.fold("x + y = 2") == "x + y = 2"  # symbols are not punctuation
    assert bank.dedup_key("Người bán hàng?") != bank.dedup_key("Người bạn hàng?")
    assert bank.strip_diacritics("Đảng, Hiến pháp, Ưu đãi") == "Dang, Hien phap, Uu dai"


def test_decomposed_input_is_stored_as_the_precomposed_text(db, make_question):
    decomposed = unicodedata.normalize("NFD", "Quyền con người được bảo đảm theo Hiến pháp?")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    question = make_question(text=decomposed, topic=unicodedata.normalize("NFD", "Kiến thức chung > Quyền"),
                             options=[(unicodedata.normalize("NFD", "Đúng"), True), ("Sai", False)])
    version = question.current_version
    assert version.text == "Quyền con người được bảo đảm theo Hiến pháp?"
    assert version.options[0]["text"] == "Đúng"
    assert question.topic.path == "Kiến thức chung > Quyền"
    assert question.dedup_key == bank.dedup_key("Quyền con người được bảo đảm theo Hiến pháp?")
    precomposed = bank.find_near_duplicates(db, "quyền con người được bảo đảm theo hiến pháp")
    assert [m.id for m in precomposed] == [question.id]


# --- versions ----------------------------------------------------------------------------------

def test_create_writes_version_1_tags_search_text_and_an_audit_entry(db, make_question):
    question = make_question(note="câu mới")
    assert question.status == "active"
    assert [v.number for v in question.versions] == [1]
    assert question.current_version.created_by == "hoidong" and question.current_version.note == "câu mới"
    assert {t.tag for t in question.tags} == {"hiến pháp"}
    assert "hiến pháp năm 2013" in question.search_text and "hien phap nam 2013" in question.search_text
    assert actions(db, question.id) == ["bank.question.create"]


def test_edit_writes_version_2_and_leaves_version_1_unchanged(db, make_question, clock):
    question = make_question()
    v1 = question.current_version
    v1_snapshot = (v1.id, v1.text, json.dumps(v1.options), v1.difficulty, v1.created_at)
    version = bank.edit_question(db, question, draft(text="Hiến pháp năm 2013 được thông qua ngày nào?",
                                                     difficulty="medium", tags=["hiến pháp", "quốc hội"]),
                                 actor="thuky", now=clock(), note="sửa nội dung")
    db.commit()
    db.expire_all()
    question = db.get(Question, question.id)
    assert version.number == 2 and question.current_version_id == version.id
    assert question.difficulty == "medium" and "thông qua" in question.search_text
    assert {t.tag for t in question.tags} == {"hiến pháp", "quốc hội"}
    old = db.get(QuestionVersion, v1_snapshot[0])
    assert (old.id, old.text, json.dumps(old.options), old.difficulty, old.created_at) == v1_snapshot
    entries = browsing.audit_entries(db, question.id)
    assert [e.action for e in entries] == ["bank.question.create", "bank.question.edit"]
    details = json.loads(entries[-1].details)
    assert details["version"] == 2 and details["changed"] == ["difficulty", "text", "tags"]
    assert details["note"] == "sửa nội dung" and entries[-1].actor == "thuky"


def test_an_edit_that_changes_nothing_is_refused(db, make_question, clock):
    question = make_question()
    with pytest.raises(bank.NoChange):
        bank.edit_question(db, question, draft(), actor="x", now=clock())


def test_frozen_version_stays_untouched_while_the_question_moves_on(db, make_question, clock):
    question = make_question()
    v1_id = question.current_version_id
    assert bank.freeze_versions(db, [v1_id]) == 1
    assert bank.freeze_versions(db, [v1_id]) == 0
    db.commit()
    bank.edit_question(db, question, draft(text="Nội dung đã sửa sau khi công bố đề?"), actor="x", now=clock())
    db.commit()
    db.expire_all()
    frozen = db.get(QuestionVersion, v1_id)
    assert frozen.frozen and frozen.text == "Hiến pháp năm 2013 có hiệu lực từ ngày nào?"
    assert db.get(Question, question.id).current_version.number == 2


def test_a_written_version_refuses_changes(db, make_question):
    question = make_question()
    question.current_version.text = "sửa lén"
    with pytest.raises(bank.BankError):
        db.flush()
    db.rollback()


def test_retire_and_restore_keep_the_question_and_log_both(db, make_question, clock):
    question = make_question()
    bank.retire_question(db, question, actor="hoidong", now=clock(), note="lỗi thời")
    db.commit()
    assert question.status == "retired"
    with pytest.raises(bank.BankError):
        bank.retire_question(db, question, actor="hoidong", now=clock())
    bank.restore_question(db, question, actor="hoidong", now=clock())
    db.commit()
    assert question.status == "active"
    assert actions(db, question.id) == ["bank.question.create", "bank.question.retire", "bank.question.restore"]


def test_invalid_question_names_every_field(db, clock):
    bad = draft(text="", difficulty="rất khó", options=[("A", False), ("A", False)])
    with pytest.raises(bank.InvalidQuestion) as caught:
        bank.create_question(db, bad, actor="x", now=clock())
    fields = {e.field for e in caught.value.errors}
    assert {"text", "difficulty", "option_b"} <= fields
    assert db.scalar(select(Question)) is None


# --- near-duplicates ---------------------------------------------------------------------------

def test_near_duplicates_ignore_case_punctuation_and_spacing_but_not_diacritics(db, make_question):
    first = make_question(text="Người bán hàng phải làm gì?")
    make_question(text="Người bạn hàng phải làm gì?")
    found = bank.find_near_duplicates(db, "NGƯỜI  bán hàng, phải làm gì")
    assert [m.id for m in found] == [first.id]
    assert bank.find_near_duplicates(db, "Người bán hàng phải làm gì?", exclude_id=first.id) == []


# --- browse and search -------------------------------------------------------------------------

@pytest.fixture
def small_bank(db, make_question, clock):
    make_question(topic="Kiến thức chung > Hiến pháp 2013", text="Hiến pháp quy định quyền con người?", tags=["hp"])
    make_question(topic="Kiến thức chung > Hiến pháp 2013 > Chương 1", text="Điều 1 Hiến pháp nói gì?",
                  difficulty="hard")
    make_question(topic="Kiến thức chung > Tổ chức bộ máy", text="Chính phủ gồm những ai?", type="multiple",
                  options=[("Thủ tướng", True), ("Các Phó Thủ tướng", True), ("Chủ tịch nước", False)])
    make_question(topic="Tin học > Excel", text="Hàm SUM dùng để làm gì? 100% đúng_không", difficulty="medium")
    retired = make_question(topic="Tin học > Excel", text="Đường dẫn tuyệt đối trong Excel?")
    bank.retire_question(db, retired, actor="x", now=clock())
    db.commit()


def texts(page) -> list[str]:
    return [row.text_start for row in page.rows]


def test_browse_filters_by_topic_subtree_difficulty_type_tag_and_status(db, small_bank):
    topic = db.scalar(select(Topic).where(Topic.path == "Kiến thức chung > Hiến pháp 2013"))
    page = browse(db, BrowseFilters(topic_id=topic.id))
    assert page.total == 2 and texts(page) == ["Điều 1 Hiến pháp nói gì?", "Hiến pháp quy định quyền con người?"]
    root = db.scalar(select(Topic).where(Topic.path == "Kiến thức chung"))
    assert browse(db, BrowseFilters(topic_id=root.id)).total == 3
    assert texts(browse(db, BrowseFilters(difficulty="hard"))) == ["Điều 1 Hiến pháp nói gì?"]
    assert texts(browse(db, BrowseFilters(qtype="multiple"))) == ["Chính phủ gồm những ai?"]
    assert texts(browse(db, BrowseFilters(tag="hp"))) == ["Hiến pháp quy định quyền con người?"]
    assert texts(browse(db, BrowseFilters(status="retired"))) == ["Đường dẫn tuyệt đối trong Excel?"]
    assert browse(db, BrowseFilters(status="active")).total == 4
    assert browse(db, BrowseFilters(topic_id=999999)).total == 0


def test_search_without_diacritics_finds_vietnamese_text(db, small_bank):
    assert browse(db, BrowseFilters(text="hien phap")).total == 2
    assert browse(db, BrowseFilters(text="HIẾN PHÁP")).total == 2
    assert texts(browse(db, BrowseFilters(text="duong dan tuyet doi"))) == [
        "Đường dẫn tuyệt đối trong Excel?"]
    assert texts(browse(db, BrowseFilters(text="chu tich nuoc"))) == ["Chính phủ gồm những ai?"]  # options
    assert browse(db, BrowseFilters(text="hiến phap")).total == 0  # half-marked words match neither form


def test_search_treats_percent_and_underscore_literally(db, small_bank):
    assert bank.search_pattern("100%") == "%100%"  # punctuation folds away: never a wildcard
    assert browse(db, BrowseFilters(text="%")).total == 5  # empty after folding: no text filter
    assert texts(browse(db, BrowseFilters(text="sum dùng"))) == ["Hàm SUM dùng để làm gì? 100% đúng_không"]
    assert browse(db, BrowseFilters(text="h_m")).total == 0


def test_keyset_pagination_walks_every_question_once(db, make_question):
    made = [make_question(text=f"Câu hỏi số {i} về Hiến pháp?").id for i in range(7)]
    seen, after, pages = [], None, 0
    while True:
        page = browse(db, BrowseFilters(), after=after, page_size=3)
        assert page.total == 7
        seen += [row.id for row in page.rows]
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(made, reverse=True) and pages == 3


# --- topics, stats, export -----------------------------------------------------------------------

def test_ensure_topic_creates_the_chain_once(db, clock):
    topic = bank.ensure_topic(db, "Tin học>Word  >  Định dạng", actor="x", now=clock())
    again = bank.ensure_topic(db, "Tin học > Word > Định dạng", actor="x", now=clock())
    db.commit()
    assert topic.id == again.id and topic.path == "Tin học > Word > Định dạng"
    assert topic.parent.path == "Tin học > Word" and topic.parent.parent.parent_id is None
    created = db.scalars(select(AuditEntry.details).where(AuditEntry.action == "bank.topic.create")).all()
    assert len(created) == 3
    with pytest.raises(bank.BankError):
        bank.ensure_topic(db, "Tin học >  > Word", actor="x", now=clock())


def test_rename_and_move_carry_subtopics_and_questions(db, make_question, clock):
    question = make_question(topic="Tin hoc > Excel > Hàm")
    old = db.scalar(select(Topic).where(Topic.path == "Tin hoc"))
    bank.rename_topic(db, old, "Tin học", actor="x", now=clock())
    db.commit()
    assert db.get(Question, question.id).topic.path == "Tin học > Excel > Hàm"
    excel = db.scalar(select(Topic).where(Topic.path == "Tin học > Excel"))
    bank.move_topic(db, excel, "Tin học văn phòng", actor="x", now=clock())
    db.commit()
    assert db.get(Question, question.id).topic.path == "Tin học văn phòng > Excel > Hàm"
    assert excel.parent.path == "Tin học văn phòng"
    with pytest.raises(bank.BankError):
        bank.move_topic(db, excel.parent, "Tin học văn phòng > Excel", actor="x", now=clock())  # under itself
    with pytest.raises(bank.BankError):
        bank.rename_topic(db, excel, "Tin học", actor="x", now=clock())  # taken
    assert {"bank.topic.rename", "bank.topic.move"} <= set(
        db.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "topic")))


def test_stats_and_topic_tree_count_active_questions(db, small_bank):
    summary = browsing.stats(db)
    assert summary.total == 4
    assert summary.count("Kiến thức chung > Hiến pháp 2013 > Chương 1", "hard") == 1
    assert summary.by_difficulty == {"easy": 2, "medium": 1, "hard": 1}
    tree = {row.path: row for row in browsing.topic_tree(db)}
    assert tree["Kiến thức chung"].own == 0 and tree["Kiến thức chung"].total == 3
    assert tree["Tin học > Excel"].own == 1


def test_export_gives_current_versions_of_active_questions(db, small_bank):
    exported = browsing.export_questions(db)
    assert len(exported) == 4
    multiple = next(q for q in exported if q.type == "multiple")
    assert [o.correct for o in multiple.options] == [True, True, False]
    assert multiple.topic == "Kiến thức chung > Tổ chức bộ máy"
    assert db.scalar(select(QuestionTag.tag)) == "hp"


def test_an_edit_based_on_an_older_version_is_refused(db, make_question, clock):
    question = make_question()
    v1 = question.current_version_id
    bank.edit_question(db, question, draft(difficulty="hard"), actor="a", now=clock(), based_on=v1)
    db.commit()
    with pytest.raises(bank.BankError) as caught:
        bank.edit_question(db, question, draft(difficulty="medium"), actor="b", now=clock(), based_on=v1)
    assert caught.value.code == "stale"
    db.rollback()
    assert [v.number for v in db.get(Question, question.id).versions] == [1, 2]


def test_create_records_near_duplicates_in_its_audit_entry(db, make_question):
    first = make_question()
    second = make_question(topic="Khác")
    details = json.loads(browsing.audit_entries(db, second.id)[0].details)
    assert details["near_duplicates"] == [first.id]
