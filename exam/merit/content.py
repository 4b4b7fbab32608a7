"""The stored form of merit lists: what ``merit_list.content`` holds, its canonical text and its hash.

A list (``exam.merit.ranking.MeritList``) is stored as plain JSON data, ``{"format":
"merit-lists/2", "lists": [...]}``, one entry per post (``list_as_data``), its rows column by
column. ``dump_merit_lists`` writes that data as canonical JSON, exactly the bytes of
``json.dumps(merit_lists_as_data(...), ensure_ascii=False, sort_keys=True, separators=(",",
":"))``: it is what the ``merit_list.content`` column keeps and what ``merit_hash`` (SHA-256)
hashes, the hash the audit chain records at publication. With the rows column by column the C
encoder writes 100,000 rows without a Python object per value.

Reading back (``load_merit_lists``, ``merit_lists_from_data``, ``list_from_data``) gives lists
whose text and hash are unchanged, and also reads the earlier format ``merit-lists/1`` (one
list per row: lists published with it keep their hash). ``matches_hash`` checks a stored text
against its hash, also for a text stored before migration 0004 as other (non-canonical) JSON.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date

from exam.core.batch import gc_paused
from exam.merit.ranking import BoardDecision, MeritList, MeritNote, MeritRow, Reason, RowColumns, TieGroup
from exam.merit.rule import MeritRejected, RuleError, rule_from_dict

FORMAT = "merit-lists/2"  # the canonical JSON's format tag (enters the hash): rows column by column
ROWS_FORMAT = "merit-lists/1"  # the earlier form, one list per row: still read (lists published with it)
FORMATS = (ROWS_FORMAT, FORMAT)
ROW_FIELDS = MeritRow._fields  # the columns of a stored list, in order (its ``row_fields``)


# --- one list --------------------------------------------------------------------------------------

def list_as_data(merit_list: MeritList) -> dict:
    """One post's list as plain data (JSON-ready, the stored and hashed form, format ``merit-lists/2``):
    ``list_from_data(list_as_data(ml)) == ml``. ``columns`` holds one list per field of ``ROW_FIELDS``
    (named in ``row_fields``), every list in display order; ``columns.components`` one list per
    component (``components``); ``columns.reasons`` each row's reasons as indexes into ``reasons``,
    the distinct [code, subject, message] of the list in order of first use."""
    c = merit_list.columns
    table: dict = {}
    indexes: dict = {}
    for reasons in dict.fromkeys(c.reasons):
        indexes[reasons] = [table.setdefault(tuple(r), len(table)) for r in reasons]
    columns = {"registration_no": c.registration_no, "full_name": c.full_name,
               "date_of_birth": c.date_of_birth, "rank": c.rank, "score": c.score,
               "components": [list(values) for values in c.components],
               "priority_categories": c.priority_categories, "bonus": c.bonus,
               "bonus_category": c.bonus_category, "total": c.total, "status": c.status,
               "reasons": list(map(indexes.__getitem__, c.reasons)), "decided_by_board": c.decided_by_board}
    return {
        "post": merit_list.post, "quota": merit_list.quota, "rule": merit_list.rule.as_dict(),
        "components": list(merit_list.components), "row_fields": list(ROW_FIELDS), "columns": columns,
        "reasons": [list(r) for r in table],
        "ties": [{"rank": t.rank, "places": t.places, "total": t.total,
                  "registration_nos": list(t.registration_nos)} for t in merit_list.ties],
        "decisions": [{"rank": d.rank, "places": d.places, "selected": list(d.selected),
                       "not_selected": list(d.not_selected), "reason": d.reason} for d in merit_list.decisions],
        "notes": [list(note) for note in merit_list.notes],
    }


def list_from_data(data: Mapping) -> MeritList:
    """One post's list back from ``list_as_data``'s data (e.g. the published JSON; format ``merit-lists/1``,
    one list per row, is read too); ``MeritRejected`` if it is not one."""
    try:
        rule, errors = rule_from_dict(data["rule"], prefix="rule")
        if errors:
            raise MeritRejected(errors)
        if list(data["row_fields"]) != list(ROW_FIELDS):
            raise MeritRejected([RuleError("row_fields", f"must be {', '.join(ROW_FIELDS)}")])
        components = tuple(data["components"])
        columns = _columns_of(data, components)
        for born in columns.date_of_birth:
            if born is not None:
                date.fromisoformat(born)
        return MeritList(
            post=data["post"], quota=data["quota"], rule=rule, components=components, columns=columns,
            ties=tuple(TieGroup(t["rank"], t["places"], t["total"], tuple(t["registration_nos"]))
                       for t in data["ties"]),
            decisions=tuple(BoardDecision(d["rank"], d["places"], tuple(d["selected"]),
                                          tuple(d["not_selected"]), d["reason"]) for d in data["decisions"]),
            notes=tuple(MeritNote(*n) for n in data["notes"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, MeritRejected):
            raise
        raise MeritRejected([RuleError("", f"is not a stored merit list ({exc!r})")]) from exc


def _columns_of(data: Mapping, components: tuple[str, ...]) -> RowColumns:
    """The RowColumns of a stored list: its ``columns`` (format 2) or its ``rows`` (format 1)."""
    if "columns" not in data:
        rows = data["rows"]
        if not isinstance(rows, list) or any(type(row) is not list or len(row) != len(ROW_FIELDS)
                                             or type(row[5]) is not list or len(row[5]) != len(components)
                                             for row in rows):
            raise ValueError(f"every row must be a list of {len(ROW_FIELDS)} fields with one value per component")
        if not rows:
            return RowColumns.empty(len(components))
        fields = [list(column) for column in zip(*rows, strict=True)]
        reasons = [tuple(Reason(*x) for x in r) if r else () for r in fields[11]]
        return RowColumns(fields[0], fields[1], fields[2], fields[3], fields[4],
                          tuple(map(list, zip(*fields[5], strict=True))) if components else (), fields[6], fields[7],
                          fields[8], fields[9], fields[10], reasons, fields[12])
    given = data["columns"]
    if not isinstance(given, dict) or set(given) != set(ROW_FIELDS):
        raise ValueError(f"columns must be {', '.join(ROW_FIELDS)}")
    values = [given[name] for name in ROW_FIELDS]
    size = len(values[0])
    if any(type(v) is not list or len(v) != size for k, v in enumerate(values) if k != 5) \
            or type(values[5]) is not list or len(values[5]) != len(components) \
            or any(type(v) is not list or len(v) != size for v in values[5]):
        raise ValueError("every column must be a list with one value per row (components: one list each)")
    table = [Reason(*r) for r in data["reasons"]]
    made: dict = {}
    reasons = []
    for found in values[11]:
        key = tuple(found)
        if key not in made:
            made[key] = tuple(table[k] for k in key)
        reasons.append(made[key])
    return RowColumns(values[0], values[1], values[2], values[3], values[4], tuple(values[5]), values[6],
                      values[7], values[8], values[9], values[10], reasons, values[12])


# --- the lists of an exam: canonical text and hash -------------------------------------------------

def _ordered(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> list[MeritList]:
    lists = list(merit_lists.values()) if isinstance(merit_lists, Mapping) else list(merit_lists)
    return sorted(lists, key=lambda ml: ml.post)


def merit_lists_as_data(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> dict:
    """The lists as plain JSON-ready data ``{"format": "merit-lists/2", "lists": [...]}``, posts sorted (each
    list ``list_as_data``: its rows column by column). ``merit_lists_from_data`` reads it back;
    ``dump_merit_lists`` is its canonical JSON."""
    with gc_paused():
        return {"format": FORMAT, "lists": [list_as_data(ml) for ml in _ordered(merit_lists)]}


def merit_lists_from_data(payload: object) -> dict[str, MeritList]:
    """{post: MeritList} from ``merit_lists_as_data``'s data (e.g. parsed from the stored JSON; format
    ``merit-lists/1`` is read too), in the stored order; ``MeritRejected`` if it is not such data."""
    if not isinstance(payload, dict) or payload.get("format") not in FORMATS \
            or not isinstance(payload.get("lists"), list):
        raise MeritRejected([RuleError("format", f"is not merit-list data of format {' or '.join(FORMATS)}")])
    with gc_paused():
        return {item["post"]: list_from_data(item) for item in payload["lists"]}


def _canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def dump_merit_lists(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> bytes:
    """The canonical JSON of the lists: ``merit_lists_as_data`` as UTF-8 JSON with sorted keys, no spaces,
    no NaN (``json.dumps(..., ensure_ascii=False, sort_keys=True, separators=(",", ":"))``). It is what
    is stored and what ``merit_hash`` hashes; with the rows column by column the C encoder writes it
    without a Python object per value."""
    return merit_lists_text(merit_lists).encode("utf-8")


def merit_lists_text(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> str:
    """``dump_merit_lists`` as text (what a text column stores)."""
    data = merit_lists_as_data(merit_lists)
    with gc_paused():
        return _canonical(data)


def merit_lists_text_and_hash(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> tuple[str, str]:
    """(``merit_lists_text``, ``merit_hash``)."""
    text = merit_lists_text(merit_lists)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_merit_lists(data: bytes | str) -> dict[str, MeritList]:
    """Read ``dump_merit_lists``'s output back: {post: MeritList}; the hash of the result is unchanged."""
    try:
        with gc_paused():
            payload = json.loads(data)
    except ValueError as exc:
        raise MeritRejected([RuleError("", f"is not JSON ({exc})")]) from exc
    return merit_lists_from_data(payload)


def merit_hash(merit_lists: Mapping[str, MeritList] | Iterable[MeritList]) -> str:
    """SHA-256 (hex) of ``dump_merit_lists``: any score, rank, status, decision or rule change changes it."""
    return merit_lists_text_and_hash(merit_lists)[1]


def matches_hash(text: str, digest: str) -> bool:
    """The stored text is the canonical JSON whose SHA-256 is ``digest`` (a text stored before migration 0004
    as other JSON is read and written canonically first)."""
    if hashlib.sha256(text.encode("utf-8")).hexdigest() == digest:
        return True
    try:
        canonical = _canonical(json.loads(text))
    except ValueError:
        return False
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest() == digest
