"""What the console shows for each seat (state, answered count, time left, frozen while paused) and
the sitting's report, after the proctor's actions (``proctor.room``)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from exam.room import attempts
from exam.room.models import Attempt
from exam.setup.models import Sitting
from proctor import room, room_state
from tests.proctor.test_room import (
    ACTOR,
    GRACE,
    MACHINE,
    T0,
    first_question,
    login,
    minutes,
    room_of,
    sections,
    started,
)


def test_each_seat_shows_its_state_answered_count_and_time_left(db):
    sitting, people = room_of(db, 8, opened=False)
    absent, door, waiting, reading, answering, silent, done, nobody = people
    room.mark_absent(db, absent, actor=ACTOR, reason="Vắng", now=T0)
    room.check_in(db, sitting, door.registration_no, actor=ACTOR, reason="Cửa", now=T0)
    login(db, waiting, T0 + minutes(1), machine="10.1.1.3 Chrome")
    assert {s.registration_no: s.state for s in room_state.seats_of(db, sitting, T0 + minutes(1))}[
        waiting.registration_no] == "logged_in"  # the sitting is not open yet
    room.open_sitting(db, sitting, actor=ACTOR, reason="Bắt đầu", now=T0 + minutes(2))
    login(db, reading, T0 + minutes(2), machine="10.1.1.4 Chrome")
    attempt = started(db, answering, T0 + minutes(2))
    started(db, silent, T0 + minutes(2))
    finished = started(db, done, T0 + minutes(2))
    question, options = first_question(db, attempt)
    attempts.save_answer(db, attempt, sections(db, answering), question_id=question, choices=[options[0]], seq=1,
                         flagged=None, machine=MACHINE, now=T0 + minutes(3), grace=GRACE)
    question, _options = first_question(db, finished)
    attempts.save_answer(db, finished, sections(db, done), question_id=question, choices=[], seq=1, flagged=True,
                         machine=MACHINE, now=T0 + minutes(3), grace=GRACE)  # flagged, not answered
    attempts.submit(db, finished, sections(db, done), now=T0 + minutes(3), grace=GRACE)
    now = T0 + minutes(3) + timedelta(seconds=30)
    attempts.heartbeat(db, attempt, sections(db, answering), now=now, grace=GRACE)
    db.commit()
    view = room_state.room_view(db, sitting, now + minutes(1))
    seats = {s.registration_no: s for s in view.seats}
    assert {number: s.state for number, s in seats.items()} == {
        absent.registration_no: "absent", door.registration_no: "checked_in", waiting.registration_no: "reading",
        reading.registration_no: "reading", answering.registration_no: "answering",
        silent.registration_no: "disconnected", done.registration_no: "submitted",
        nobody.registration_no: "not_arrived"}
    mine = seats[answering.registration_no]
    assert mine.answered == 1 and seats[done.registration_no].answered == 0
    assert mine.section_left == (T0 + minutes(12) - (now + minutes(1))).total_seconds()
    assert mine.ip == "10.1.1.21" and mine.last_heartbeat_at == now
    assert [s.seat for s in view.seats] == sorted(s.seat for s in view.seats)
    assert view.counts["reading"] == 2 and sum(view.counts.values()) == 8 and view.phase == "running"
    # Paused: the time left stands still.
    room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện", now=now + minutes(2))
    frozen = {s.registration_no: s.section_left for s in room_state.seats_of(db, sitting, now + minutes(2))}
    later = {s.registration_no: s.section_left for s in room_state.seats_of(db, sitting, now + minutes(9))}
    assert frozen == later and room_state.room_view(db, sitting, now + minutes(9)).phase == "paused"


def test_the_report_holds_attendance_submissions_grants_pauses_and_every_reason(db):
    sitting, (a, b, c) = room_of(db, 3, opened=False)
    room.check_in(db, sitting, a.registration_no, actor=ACTOR, reason="Cửa", now=T0 - minutes(5))
    room.open_sitting(db, sitting, actor=ACTOR, reason="Đúng giờ", now=T0)
    attempt = started(db, a, T0 + minutes(1))
    room.extend_time(db, a, seconds=180, actor=ACTOR, reason="Máy chậm", now=T0 + minutes(2))
    room.pause_room(db, sitting, actor=ACTOR, reason="Mất điện", now=T0 + minutes(3))
    room.resume_room(db, sitting, actor=ACTOR, reason="Có điện", now=T0 + minutes(5))
    room.mark_absent(db, c, actor=ACTOR, reason="Không đến", now=T0 + minutes(16))
    room.force_submit(db, a, actor=ACTOR, reason="Thí sinh xin nộp sớm do mệt", now=T0 + minutes(6))
    room.note_incident(db, sitting, kind="technical", description="Máy 2 khởi động lại", actor=ACTOR,
                       now=T0 + minutes(7), candidate=b)
    db.commit()
    report = room_state.room_report(db, sitting, T0 + minutes(40))
    assert [s.registration_no for s in report.present] == [a.registration_no]
    assert [s.registration_no for s in report.absent] == [c.registration_no]
    assert [s.registration_no for s in report.unaccounted] == [b.registration_no]
    assert report.submitted == 1 and report.submitted_by("proctor") == 1
    assert [(g.registration_no, g.details["seconds"], g.reason) for g in report.grants] == [
        (a.registration_no, 180, "Máy chậm")]
    assert report.pauses == [(T0 + minutes(3), T0 + minutes(5), 120, "Mất điện")]
    assert [x.action for x in report.actions] == ["sitting.open", "attempt.extend", "sitting.pause", "sitting.resume",
                                                  "candidate.absent", "attempt.force_submit"]
    assert all(x.reason for x in report.actions)
    assert attempt.status == "submitted"
    assert db.scalar(select(Sitting.paused_seconds).where(Sitting.id == sitting.id)) == 120
    assert db.scalar(select(Attempt.extra_seconds).where(Attempt.id == attempt.id)) == 180
