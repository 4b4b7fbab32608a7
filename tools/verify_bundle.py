#!/usr/bin/env python3
"""Check an exam's audit bundle on any machine: Python 3.9+ standard library only.

    python3 verify_bundle.py BUNDLE.zip
    python3 verify_bundle.py BUNDLE.zip --expect-head "5321 · 3f2a 9b1c 0d4e 77aa" --public-key key.pem

The bundle is written by ``flask --app wsgi audit export EXAM FILE``. This program shares no
code with the exam system: it re-implements, as plainly as it can, every rule it checks.

1. Manifest: every file has the SHA-256 and size the manifest lists; nothing missing or added.
2. Audit chain: entries numbered 1..N without gaps, each linked to the one before by its hash,
   each entry's hash the SHA-256 of the canonical JSON of its fields.
3. Signed checkpoints: each lies on the chain (the entry at its count has its hash) and none
   lies beyond its end (entries cut off); the signatures are checked with the Ed25519 public key
   when the ``cryptography`` package is installed; otherwise this is said plainly and only the
   key ids are compared. ``--public-key`` gives a key obtained independently of the bundle, and
   ``--expect-head`` a fingerprint printed at publication, which must lie on this chain.
4. Papers: items match the paper's content hash and draw only from the frozen pool.
5. Attempts: every save history is an unbroken hash chain ending in the head the attempt records
   and the one the audit chain recorded at submission; the stored responses are the last saves;
   every attempt the chain saw start is in the bundle.
6. Re-tally: every score recomputed from the last saves and the key (with the approved key
   corrections) and compared with the chain's submission entry, the attempt's stored score,
   the round-1 score of the latest grading and the published merit list.
7. Merit list: its hash (SHA-256 of the canonical JSON of its content; rows stored column by column,
   format merit-lists/2, or one list per row, merit-lists/1), its presence in the audit chain, and
   every row against its rule:
   eligibility, the highest priority bonus only, totals, standard competition ranks (1, 1, 3),
   the quota, and candidates tied at the quota boundary listed as a tie for the board (or decided
   by it, filling exactly the places left).

Prints one line per check or failure; exits 0 when everything holds, 1 when anything fails,
2 when the file is not a bundle.

One file on purpose (past 600 lines): an auditor copies it alone onto any machine and runs it there.
Its sections follow the checks above: 1 the manifest (read_bundle); 2, 3 the chain and its
checkpoints (check_chain, check_checkpoints, check_expected_head); 4, 5, 6 papers, attempts and
scores (tally, check_papers, check_attempts); 7 the merit list (check_merit_list, check_post_list,
check_ranks); then the whole bundle (verify, main).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import sys
import unicodedata
import zipfile

GENESIS = "0" * 64
CHAIN_FIELDS = ("seq", "at", "actor", "role", "action", "object_type", "object_id", "details", "prev_hash")
LETTERS = "ABCDEFGH"
TOLERANCE = 0.5e-4 + 1e-9  # stored scores are rounded to 4 decimals
PASS_EPS = 1e-9


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_hash(entry: dict) -> str:
    return sha256_hex(canonical({name: entry[name] for name in CHAIN_FIELDS}))


def save_hash(attempt_id: str, row: dict, prev_hash: str) -> str:
    return sha256_hex(canonical({"attempt": attempt_id, "seq": row["seq"], "item": row["item_id"],
                                 "choices": json.loads(row["choices"]), "flagged": bool(row["flagged"]),
                                 "at": row["at"], "machine": row["machine"], "prev_hash": prev_hash}))


def close(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    return abs(float(a) - float(b)) <= TOLERANCE


def fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text or "").casefold().split())


class Report:
    def __init__(self):
        self.failures = 0
        self.skipped = []

    def ok(self, text: str) -> None:
        print(f"ok    {text}")

    def info(self, text: str) -> None:
        print(f"note  {text}")

    def fail(self, text: str) -> None:
        self.failures += 1
        print(f"FAIL  {text}")

    def skip(self, text: str) -> None:
        self.skipped.append(text)
        print(f"SKIP  {text}")


# --- 1. the manifest ----------------------------------------------------------------------------

def read_bundle(path: str, report: Report) -> dict:
    with zipfile.ZipFile(path) as bundle:
        names = set(bundle.namelist())
        manifest = json.loads(bundle.read("manifest.json"))
        print(f"bundle of exam {manifest.get('exam')}, made {manifest.get('created_at')}")
        files = {}
        bad = 0
        for name, expected in sorted(manifest.get("files", {}).items()):
            if name not in names:
                report.fail(f"manifest: {name} is listed but missing from the bundle")
                bad += 1
                continue
            data = bundle.read(name)
            files[name] = data
            if hashlib.sha256(data).hexdigest() != expected["sha256"] or len(data) != expected["bytes"]:
                report.fail(f"manifest: {name} does not match its SHA-256 in the manifest (altered)")
                bad += 1
        for name in sorted(names - set(manifest.get("files", {})) - {"manifest.json"}):
            report.fail(f"manifest: {name} is in the bundle but not in the manifest")
            bad += 1
    if manifest.get("format") != "exam-audit-bundle/1":
        report.fail(f"manifest: unknown format {manifest.get('format')!r}")
    elif not bad:
        report.ok(f"manifest: {len(files)} files match their SHA-256")
    return {"manifest": manifest, "files": files}


def load_json(bundle: dict, name: str, default=None):
    data = bundle["files"].get(name)
    return default if data is None else json.loads(data.decode("utf-8"))


def load_lines(bundle: dict, name: str) -> list:
    data = bundle["files"].get(name)
    return [] if data is None else [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


# --- 2, 3. the chain and its checkpoints ----------------------------------------------------------

def check_chain(entries: list, report: Report) -> dict:
    """{seq: hash} of the chain; every break reported."""
    hash_at = {}
    prev, expected_seq, broken = GENESIS, 1, 0
    for entry in entries:
        seq = entry["seq"]
        if seq != expected_seq:
            report.fail(f"chain: entry {expected_seq} is missing or out of order (found {seq})")
            broken += 1
            expected_seq = seq
        if entry["prev_hash"] != prev:
            report.fail(f"chain: entry {seq} does not follow entry {seq - 1} (inserted, removed or rewritten)")
            broken += 1
        if entry_hash(entry) != entry["hash"]:
            report.fail(f"chain: entry {seq} ({entry['action']}) was altered: its content does not match its hash")
            broken += 1
        hash_at[seq] = prev = entry["hash"]
        expected_seq += 1
    if not broken:
        report.ok(f"chain: {len(entries)} entries, each linked to the one before and matching its hash")
    return hash_at


def pem_raw_key(pem: str) -> bytes:
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)[-32:]  # an Ed25519 SubjectPublicKeyInfo ends with the 32-byte key


def signature_checker(pem: str, report: Report):
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        report.skip("checkpoint signatures NOT checked: the `cryptography` package is not installed "
                    "(pip install cryptography, then run again); only the key ids were compared")
        return None
    key = Ed25519PublicKey.from_public_bytes(pem_raw_key(pem))

    def valid(message: bytes, signature: str) -> bool:
        try:
            key.verify(base64.b64decode(signature), message)
            return True
        except (InvalidSignature, ValueError):
            return False

    return valid


def check_checkpoints(bundle: dict, hash_at: dict, pem: str, report: Report) -> None:
    data = load_json(bundle, "checkpoints.json", {})
    head = load_json(bundle, "head.json", {})
    chain_id = data.get("chain_id")
    count = max(hash_at, default=0)
    if head.get("chain_id") != chain_id:
        report.fail("head: its chain id differs from the checkpoints'")
    if (head.get("count"), head.get("hash")) != (count, hash_at.get(count, GENESIS)):
        report.fail(f"head: records {head.get('count')} entries ending in {str(head.get('hash'))[:16]}…, the chain "
                    f"holds {count}")
    manifest_chain = bundle["manifest"].get("chain", {})
    if (manifest_chain.get("count"), manifest_chain.get("head_hash")) != (head.get("count"), head.get("hash")):
        report.fail("manifest: its chain head differs from head.json")
    key_id = hashlib.sha256(pem_raw_key(pem)).hexdigest()[:16]
    valid = signature_checker(pem, report)
    seen, checked, furthest, bad = set(), 0, 0, 0
    for source in ("database", "file"):
        for checkpoint in data.get(source, []):
            if checkpoint.get("chain_id") != chain_id or checkpoint["signature"] in seen:
                continue
            seen.add(checkpoint["signature"])
            label = f"checkpoint ({source}) of {checkpoint['at']} at entry {checkpoint['count']}"
            if checkpoint.get("key_id") != key_id:
                report.fail(f"{label}: signed by key {checkpoint.get('key_id')}, not the bundle's key {key_id}")
                bad += 1
            if valid is not None:
                message = "exam-audit-checkpoint/1|{chain_id}|{count}|{head_hash}|{at}".format(**checkpoint).encode()
                if not valid(message, checkpoint["signature"]):
                    report.fail(f"{label}: invalid signature")
                    bad += 1
                    continue
            if checkpoint["count"] > count:
                report.fail(f"{label}: the chain ends at entry {count}; entries {count + 1} to "
                            f"{checkpoint['count']} were cut off")
                bad += 1
            elif checkpoint["count"] > 0 and hash_at.get(checkpoint["count"]) != checkpoint["head_hash"]:
                report.fail(f"{label}: does not match entry {checkpoint['count']}: the chain was rewritten")
                bad += 1
            else:
                checked += 1
                furthest = max(furthest, checkpoint["count"])
    if count and not checked:
        report.fail("checkpoints: no valid signed checkpoint covers this chain")
    elif not bad:
        how = "signatures verified" if valid is not None else "signatures NOT verified"
        report.ok(f"checkpoints: {checked} lie on the chain ({how}); the last covers entry {furthest} of {count}")
    if furthest < count:
        report.info(f"entries {furthest + 1} to {count} come after the last signed checkpoint")


def check_expected_head(expected: str, hash_at: dict, report: Report) -> None:
    """A printed fingerprint "N · xxxx xxxx xxxx xxxx" (or N and a hash prefix) must lie on the chain."""
    text = expected.replace("·", " ").split()
    try:
        count, prefix = int(text[0]), "".join(text[1:]).lower()
    except (ValueError, IndexError):
        report.fail(f"--expect-head {expected!r}: give it as printed, e.g. \"5321 · 3f2a 9b1c 0d4e 77aa\"")
        return
    actual = hash_at.get(count, GENESIS if count == 0 else None)
    if actual is None:
        report.fail(f"the printed head at entry {count} is beyond this chain's end ({max(hash_at, default=0)})")
    elif len(prefix) < 16 or not actual.startswith(prefix):
        report.fail(f"the printed head {expected} does not match entry {count} of this chain ({actual[:16]})")
    else:
        report.ok(f"the printed head {expected} is entry {count} of this chain")


# --- 4, 5, 6. papers, attempts, scores ------------------------------------------------------------

def approved_corrections(rows: list) -> dict:
    approved = sorted((r for r in rows if r["status"] == "approved"),
                      key=lambda r: (str(r.get("decided_at") or ""), r["id"]))
    return {r["question_version_id"]: r for r in approved}


def tally(sections: list, items: list, answers: dict, versions: dict, corrections: dict) -> dict:
    """The score of one paper: see exam/audit/retally.py for the rule in words (the same rule, written again)."""
    result, total = [], 0.0
    for section in sorted(sections, key=lambda s: s["position"]):
        marks = float(section["marks_per_question"])
        questions = int(section["question_count"])
        points, correct, answered = 0.0, 0, 0
        for item in (i for i in items if i["section_id"] == section["id"]):
            version = versions[item["question_version_id"]]
            fix = corrections.get(item["question_version_id"])
            if fix and fix["action"] == "void_remove":  # out of the test, not even counted as answered
                questions -= 1
                continue
            picked = set(answers.get(item["id"], ()))
            chosen = {j for j, option_id in enumerate(item["option_ids"]) if option_id in picked}
            answered += bool(chosen)
            if fix and fix["action"] == "void_award":
                correct, points = correct + 1, points + marks
            else:
                if fix and fix["action"] == "rekey":
                    right = set(fix["correct"])
                else:
                    right = {i for i, option in enumerate(version["options"]) if option["correct"]}
                key = {j for j, original in enumerate(item["option_order"]) if original in right}
                if key and chosen == key:
                    correct, points = correct + 1, points + marks
                elif chosen:
                    if section["multiple_scoring"] == "partial" and version["qtype"] == "multiple":
                        points += marks * max(len(chosen & key) - len(chosen - key), 0) / max(len(key), 1)
                    points -= float(section["negative_fraction"]) * marks
        total += points
        result.append({"code": section["code"], "title": section["title"], "questions": questions,
                       "correct": correct, "answered": answered,
                       "score": round(points, 4), "max_score": round(marks * questions, 4),
                       "passed": correct + PASS_EPS >= float(section["pass_ratio"]) * questions})
    return {"sections": result, "total": round(total, 4), "passed": all(s["passed"] for s in result)}


def score_problems(mine: dict, stored) -> list:
    if not stored:
        return ["no stored score"]
    problems = [f"{name} {stored[name]} ≠ re-tallied {mine[name]}"
                for name in ("total", "passed") if name in stored and not close(stored[name], mine[name])]
    by_code = {s["code"]: s for s in mine["sections"]}
    if len(stored.get("sections") or []) != len(by_code):
        problems.append("the number of sections differs")
    for section in stored.get("sections") or []:
        if section.get("code") not in by_code:
            problems.append(f"unknown section {section.get('code')!r}")
            continue
        for name in ("questions", "correct", "answered", "score", "max_score", "passed"):
            if name in section and not close(section[name], by_code[section["code"]][name]):
                problems.append(f"section {section['code']}: {name} {section[name]} ≠ re-tallied "
                                f"{by_code[section['code']][name]}")
    return problems


def paper_hash(items: list) -> str:
    payload = [[i["position"], i["section_id"], i["question_version_id"], i["public_id"], i["option_order"],
                i["option_ids"]] for i in items]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def check_papers(papers: dict, versions: dict, pool: set, report: Report) -> None:
    bad = 0
    for reg, paper in sorted(papers.items()):
        problems = []
        if paper_hash(paper["items"]) != paper["content_hash"]:
            problems.append("its items do not match its content hash")
        for item in paper["items"]:
            version = versions.get(item["question_version_id"])
            if version is None:
                problems.append(f"question {item['position']}: version {item['question_version_id']} not in the "
                                f"bundle")
            elif sorted(item["option_order"]) != list(range(len(version["options"]))):
                problems.append(f"question {item['position']}: option order is not a permutation of its options")
            elif item["question_version_id"] not in pool:
                problems.append(f"question {item['position']}: version {item['question_version_id']} is not in the "
                                f"exam's frozen pool")
        for text in problems:
            report.fail(f"paper of {reg}: {text}")
        bad += bool(problems)
    if not bad:
        report.ok(f"papers: {len(papers)} match their content hashes and draw from the frozen pool")


def check_attempts(bundle: dict, entries: list, papers: dict, candidates: dict, versions: dict, sections: list,
                   corrections: dict, report: Report) -> dict:
    """Histories, submissions and re-tally; returns {registration number: corrected tally}."""
    submits, started = chain_attempts(entries, candidates)
    scores = {row["registration_no"]: row for row in load_lines(bundle, "scores.jsonl")}
    attempts = load_lines(bundle, "attempts.jsonl")
    present = {a["public_id"] for a in attempts}
    for public_id, reg in sorted(started.items()):
        if public_id not in present:
            report.fail(f"attempt of {reg}: the chain records its start (attempt {public_id}) but it is not in the "
                        f"bundle (removed)")
    tallies, histories, bad = {}, 0, 0
    for attempt in attempts:
        reg = attempt["registration_no"]
        problems, head, unbroken = history_problems(attempt)
        histories += unbroken
        last = {}
        for row in attempt["history"]:
            last[row["item_id"]] = {"choices": json.loads(row["choices"]), "seq": row["seq"]}
        paper = papers.get(reg)
        problems += response_problems(attempt, last, paper)
        missing = paper is not None and any(i["question_version_id"] not in versions for i in paper["items"])
        if missing:
            problems.append("cannot re-tally: a question of the paper is missing from questions.json")
        if attempt["status"] == "submitted" and paper is not None and not missing:
            found = submits.get(attempt["public_id"], [])
            summary, more = submission_problems(found, head)
            problems += more
            answers = {item_id: save["choices"] for item_id, save in last.items()}
            tallies[reg], more = retally_problems(attempt, paper, answers, summary, sections, versions, corrections,
                                                  (scores.get(reg) or {}).get("candidate_score"))
            problems += more
        for text in problems:
            report.fail(f"attempt of {reg}: {text}")
        bad += bool(problems)
    if not bad:
        report.ok(f"attempts: {histories} save histories unbroken and matching the chain's submission entries; "
                  f"{len(tallies)} scores re-tallied with {len(corrections)} approved key correction(s), no difference")
    return tallies


def chain_attempts(entries: list, candidates: dict) -> tuple:
    """({attempt: its attempt.submit entries}, {attempt: registration number} of the starts the chain saw
    of the bundle's candidates, in their sitting)."""
    submits, started = {}, {}
    for entry in entries:
        if entry["action"] == "attempt.submit":
            submits.setdefault(entry["object_id"], []).append(entry)
        elif entry["action"] == "attempt.start":
            details = json.loads(entry["details"])
            candidate = candidates.get(details.get("registration_no"))
            if candidate is not None and candidate.get("sitting") == details.get("sitting"):
                started[entry["object_id"]] = details.get("registration_no")
    return submits, started


def history_problems(attempt: dict) -> tuple:
    """(problems, (saves walked, the last hash), whether the history is unbroken): each save linked to the one
    before and matching its hash; the head the attempt records."""
    problems = []
    prev, count = GENESIS, 0
    for row in attempt["history"]:
        count += 1
        if row["prev_hash"] != prev:
            problems.append(f"save {count} (seq {row['seq']}) does not follow the save before it")
            return problems, (count, prev), False
        if save_hash(attempt["public_id"], row, prev) != row["hash"]:
            problems.append(f"save {count} (seq {row['seq']}) was altered: it does not match its hash")
            return problems, (count, prev), False
        prev = row["hash"]
    if (count, prev) != (attempt["history_count"], attempt["history_hash"]):
        problems.append(f"the attempt records {attempt['history_count']} saves ending in "
                        f"{attempt['history_hash'][:12]}…, its history holds {count} ending in {prev[:12]}…")
    return problems, (count, prev), True


def response_problems(attempt: dict, last: dict, paper) -> list:
    """Saves of items not on the paper, and stored responses that are not the history's last saves."""
    problems = []
    numbers = {item["id"]: item["position"] for item in paper["items"]} if paper else {}
    for item_id in sorted(set(last) - set(numbers)):
        problems.append(f"a save answers item {item_id}, which is not on the candidate's paper")
    stored = {r["item_id"]: r for r in attempt["responses"]}
    for item_id in sorted(set(stored) | set(last), key=lambda i: numbers.get(i, 0)):
        a, b = stored.get(item_id), last.get(item_id)
        if a is None or b is None or list(a["choices"]) != b["choices"] or a["seq"] != b["seq"]:
            problems.append(f"question {numbers.get(item_id, '?')}: stored response "
                            f"{a and a['choices']} differs from the history's last save {b and b['choices']}")
    return problems


def submission_problems(found: list, head: tuple) -> tuple:
    """(the score summary of the last submission entry or None, problems): one entry, holding the history's
    head (saves, last hash)."""
    problems, summary = [], None
    if len(found) != 1:
        problems.append(f"{len(found)} submission entries in the chain (expected one)")
    if found:
        count, prev = head
        details = json.loads(found[-1]["details"])
        summary = details.get("score")
        if (details.get("history_count"), details.get("history_hash")) != (count, prev):
            problems.append(f"the chain's submission entry {found[-1]['seq']} holds "
                            f"{details.get('history_count')} saves ending in "
                            f"{str(details.get('history_hash'))[:12]}…, the history {count} ending in "
                            f"{prev[:12]}…")
    return summary, problems


def retally_problems(attempt: dict, paper: dict, answers: dict, summary, sections: list, versions: dict,
                     corrections: dict, round1) -> tuple:
    """(the corrected tally, problems): the submission entry's score and the attempt's stored one against the
    key as published (or, after a regrade, the corrected one), the grading run's round-1 score against the
    corrected key."""
    problems = []
    as_published = tally(sections, paper["items"], answers, versions, {})
    corrected = tally(sections, paper["items"], answers, versions, corrections) if corrections else as_published
    if summary is not None:
        problems += [f"score in the chain's submission entry: {p}" for p in score_problems(as_published, summary)]
    mismatch = score_problems(as_published, attempt.get("score"))
    if mismatch and corrections and not score_problems(corrected, attempt.get("score")):
        mismatch = []  # rewritten by a regrade with the corrections
    problems += [f"stored attempt score: {p}" for p in mismatch]
    if round1 is not None:
        problems += [f"round-1 score of the grading run: {p}" for p in score_problems(corrected, round1)]
    return corrected, problems


# --- 7. the merit list -------------------------------------------------------------------------------

def bonus_of(rule: dict, categories: str) -> float:
    points = {fold(name): float(value) for name, value in (rule.get("bonus") or {}).items()}
    for alias, category in (rule.get("aliases") or {}).items():
        points.setdefault(fold(alias), points.get(fold(category), 0.0))
    found = [points[fold(name)] for name in (categories or "").split(";") if fold(name) in points]
    return max(found, default=0.0)  # only the highest bonus counts


def merit_rows(data: dict) -> list:
    """The rows of one post's list as dicts named by its row_fields. Format merit-lists/2 stores each field
    as a column ("columns": one list per field in row order; "components" one list per component;
    "reasons" indexes into the list's "reasons"); merit-lists/1 stored one list per row."""
    names = data["row_fields"]
    if "columns" in data:
        columns, table = data["columns"], data["reasons"]
        rows = []
        for k in range(len(columns["registration_no"])):
            row = {name: columns[name][k] for name in names if name != "components"}
            row["components"] = [values[k] for values in columns["components"]]
            row["reasons"] = [table[r] for r in columns["reasons"][k]]
            rows.append(row)
    else:
        rows = [named(names, row) for row in data["rows"]]
    for row in rows:
        row["components"] = named(data["components"], row["components"])
    return rows


def named(names: list, values: list) -> dict:
    """{name: value}, as many values as names (what zip(strict=True) does, from Python 3.10 only)."""
    if len(values) != len(names):
        raise ValueError(f"{len(values)} values for the {len(names)} fields {names}")
    return {name: values[k] for k, name in enumerate(names)}


def check_merit_list(bundle: dict, entries: list, candidates: dict, tallies: dict, submitted: set,
                     report: Report) -> None:
    lists = published_lists(bundle, entries, report)
    if lists is None:
        return
    external = {row["registration_no"]: row.get("external_scores") or {} for row in load_lines(bundle, "scores.jsonl")}
    listed = set()
    for data in lists:
        listed |= check_post_list(data, candidates, tallies, submitted, external, report)
    for reg in sorted(set(candidates) - listed):
        report.fail(f"merit list: candidate {reg} is on no post's list")


def published_lists(bundle: dict, entries: list, report: Report):
    """The lists per post of the bundle's merit list, after its hash and its merit.publish entry are checked;
    None when there is no list or it is not in a known format."""
    merit = load_json(bundle, "merit_list.json")
    if merit is None:
        report.info("no published merit list in the bundle: nothing to check against a rule")
        return None
    content = merit["content"]
    if sha256_hex(canonical(content)) != merit["hash"]:
        report.fail("merit list: its content does not match its hash")
    published = [e for e in entries if e["action"] == "merit.publish" and merit["hash"] in e["details"]]
    if published:
        report.ok(f"merit list: hash {merit['hash'][:16]}… was published in the chain (entry {published[0]['seq']})")
    else:
        report.fail(f"merit list: its hash {merit['hash'][:16]}… is in no merit.publish entry of the audit chain")
    lists = content.get("lists") if isinstance(content, dict) else None
    if not isinstance(lists, list) or content.get("format") not in ("merit-lists/1", "merit-lists/2"):
        report.fail("merit list: the content is not a list of ranked lists per post (format merit-lists/2, or "
                    "merit-lists/1)")
        return None
    return lists


def check_post_list(data: dict, candidates: dict, tallies: dict, submitted: set, external: dict,
                    report: Report) -> set:
    """One post's list against its rule: who is listed, each row, the ranks, the quota and its ties; returns the
    registration numbers listed."""
    failures_before = report.failures
    post, quota, rule = data["post"], data["quota"], data["rule"]
    rows = merit_rows(data)
    where = f"merit list {post!r}"
    members = {reg for reg, c in candidates.items() if fold(c["post"]) == fold(post)}
    regs = {row["registration_no"] for row in rows}
    for reg in sorted(members - regs):
        report.fail(f"{where}: candidate {reg} applied for this post but is not listed")
    for reg in sorted(regs - members):
        report.fail(f"{where}: {reg} is listed but did not apply for this post")
    keys = {}
    for row in rows:
        key = check_row(row, rule, where, candidates, tallies, submitted, external, report)
        if key is not None:
            keys[row["registration_no"]] = key
    check_ranks(data, rows, keys, where, report)
    selected = sum(1 for row in rows if row["status"] == "selected")
    if selected > quota:
        report.fail(f"{where}: {selected} selected for a quota of {quota}")
    if report.failures == failures_before:
        report.ok(f"{where}: {len(rows)} rows follow the rule (quota {quota}, {selected} selected)")
    return regs


def component_value(name: str, reg: str, bonus: float, tallies: dict, external: dict):
    """A score the rule names: the bonus, the re-tallied round-1 total, or an outside score (None: none)."""
    if name == "bonus":
        return bonus
    if name == "round1_total":
        return tallies[reg]["total"] if reg in tallies else None
    return external.get(reg, {}).get(name)


def check_row(row: dict, rule: dict, where: str, candidates: dict, tallies: dict, submitted: set, external: dict,
              report: Report):
    """One row against the rule: eligibility, the round-1 total, score, bonus and total; returns its ranking key
    (total, tie-breaks…) when it is ranked, None when it is (rightly or not) ineligible."""
    reg = row["registration_no"]
    bonus = bonus_of(rule, candidates.get(reg, {}).get("priority_category", ""))
    score = component_value(rule["score"], reg, bonus, tallies, external)
    reasons = round1_reasons(row, rule, where, tallies, submitted, report)
    if score is None:
        reasons.append(f"no {rule['score']} score")
    elif rule.get("min_score") is not None and round(score, 4) + PASS_EPS < rule["min_score"]:
        reasons.append(f"{rule['score']} {score} below {rule['min_score']}")
    round1_total = component_value("round1_total", reg, bonus, tallies, external)
    if "round1_total" in row["components"] and not close(row["components"]["round1_total"], round1_total):
        report.fail(f"{where}: {reg} has round-1 total {row['components']['round1_total']}, the re-tally "
                    f"{round1_total}")
    if reasons:
        if row["status"] != "ineligible":
            report.fail(f"{where}: {reg} is {row['status']} but ineligible: {'; '.join(reasons)}")
        return None
    if row["status"] == "ineligible":
        report.fail(f"{where}: {reg} is listed ineligible but meets every condition")
        return None
    total = round(score + bonus, 4)
    for name, expected in (("score", score), ("bonus", bonus), ("total", total)):
        if not close(row[name], expected):
            report.fail(f"{where}: {reg} has {name} {row[name]}, the rule gives {expected}")
    tie_values = [component_value(name, reg, bonus, tallies, external) for name in rule.get("tie_break") or ()]
    return tuple(round(v, 4) if v is not None else -math.inf for v in [total] + tie_values)


def round1_reasons(row: dict, rule: dict, where: str, tallies: dict, submitted: set, report: Report) -> list:
    """Why the rule's round-1 condition makes the row ineligible (did not sit, failed sections); a listed set of
    failed sections other than the re-tally's is reported."""
    reg = row["registration_no"]
    if not rule.get("require_round1_sections_passed"):
        return []
    if reg not in submitted:
        return ["did not sit round 1"]
    failed = [s["title"] for s in tallies[reg]["sections"] if not s["passed"]]
    if not failed:
        return []
    listed_failed = {r[1] for r in row["reasons"] or () if r[0] == "round1_section_failed"}
    if row["status"] == "ineligible" and listed_failed and listed_failed != set(failed):
        report.fail(f"{where}: {reg} is listed as failing {sorted(listed_failed)}, the re-tally "
                    f"says {sorted(failed)}")
    return ["failed round-1 section(s) " + ", ".join(failed)]


def check_ranks(data: dict, rows: list, keys: dict, where: str, report: Report) -> None:
    """Standard competition ranks on (total, tie-breaks…), all descending; the quota decides the rest, and a tie
    at its boundary is listed for the board or decided by it."""
    quota = data["quota"]
    by_reg = {row["registration_no"]: row for row in rows}
    groups = {}
    for reg, key in keys.items():
        groups.setdefault(key, []).append(reg)
    expected_ties = []
    for key, regs_in_group in groups.items():
        rank = 1 + sum(1 for other in keys.values() if other > key)
        size = len(regs_in_group)
        if rank + size - 1 <= quota:
            status = "selected"
        elif rank <= quota:
            status = "tie"
            expected_ties.append((rank, sorted(regs_in_group)))
        else:
            status = "not_selected"
        decided = check_group(regs_in_group, rank, status, by_reg, where, report)
        if status == "tie":
            check_tie(regs_in_group, rank, quota, decided, by_reg, where, report)
    listed_ties = sorted((t["rank"], sorted(t["registration_nos"])) for t in data.get("ties") or ())
    unresolved = sorted(t for t in expected_ties if not any(by_reg[r].get("decided_by_board") for r in t[1]))
    if listed_ties != unresolved:
        report.fail(f"{where}: ties listed {listed_ties}, the rule gives {unresolved}")


def check_group(regs_in_group: list, rank: int, status: str, by_reg: dict, where: str, report: Report) -> int:
    """The rank and status of each row of a group of equal keys; returns how many of a tie the board selected."""
    decided = 0
    for reg in regs_in_group:
        row = by_reg[reg]
        if row["rank"] != rank:
            report.fail(f"{where}: {reg} is ranked {row['rank']}, the rule gives {rank}")
        if status == "tie" and row.get("decided_by_board"):
            decided += row["status"] == "selected"
            continue
        if row["status"] != status:
            report.fail(f"{where}: {reg} is {row['status']}, the rule gives {status}")
    return decided


def check_tie(regs_in_group: list, rank: int, quota: int, decided: int, by_reg: dict, where: str,
              report: Report) -> None:
    """A tie at the quota boundary: decided by the board for all its candidates, filling exactly the places
    left, or left to the board."""
    size = len(regs_in_group)
    if any(by_reg[r].get("decided_by_board") for r in regs_in_group):
        places = quota - rank + 1
        if not all(by_reg[r].get("decided_by_board") for r in regs_in_group) or decided != places:
            report.fail(f"{where}: the board's decision on the tie at rank {rank} selects {decided} of "
                        f"{size} for {places} place(s)")
        else:
            report.info(f"{where}: tie at rank {rank} ({size} candidates for {places} place(s)) decided by "
                        f"the board")
    else:
        report.info(f"{where}: tie at the quota boundary, rank {rank}: {', '.join(sorted(regs_in_group))} "
                    f"for {quota - rank + 1} place(s), left to the board")


# --- the whole bundle ----------------------------------------------------------------------------------

def verify(path: str, expect_head: str | None = None, public_key_file: str | None = None) -> int:
    report = Report()
    try:
        return _verify(path, expect_head, public_key_file, report)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        report.fail(f"the bundle is malformed where the checks above stopped: {type(exc).__name__}: {exc}")
        print(f"\nFAILED: {report.failures} problem(s)")
        return 1


def _verify(path: str, expect_head: str | None, public_key_file: str | None, report: Report) -> int:
    try:
        bundle = read_bundle(path, report)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        print(f"FAIL  {path} is not a readable audit bundle: {exc}")
        return 2
    manifest = bundle["manifest"]
    entries = load_lines(bundle, "chain.jsonl")
    hash_at = check_chain(entries, report)
    pem = bundle["files"].get("public_key.pem", b"").decode()
    if public_key_file:
        with open(public_key_file, encoding="utf-8") as fh:
            trusted = fh.read()
        if pem_raw_key(trusted) != pem_raw_key(pem):
            report.fail("the bundle's public key is not the key given with --public-key")
        pem = trusted
    check_checkpoints(bundle, hash_at, pem, report)
    if expect_head:
        check_expected_head(expect_head, hash_at, report)

    exam = load_json(bundle, "exam.json", {})
    versions = {v["id"]: v for v in load_json(bundle, "questions.json", [])}
    corrections = approved_corrections(load_json(bundle, "key_corrections.json", []))
    candidates = {c["registration_no"]: c for c in load_lines(bundle, "candidates.jsonl")}
    papers = {p["registration_no"]: p for p in load_lines(bundle, "papers.jsonl")}
    pool = {v for cell in exam.get("pool", []) for v in cell["question_version_ids"]}
    check_papers(papers, versions, pool, report)
    tallies = check_attempts(bundle, entries, papers, candidates, versions, exam.get("sections", []), corrections,
                             report)
    check_merit_list(bundle, entries, candidates, tallies, set(tallies), report)

    head = load_json(bundle, "head.json", {})
    if report.failures:
        print(f"\nFAILED: {report.failures} problem(s) in the bundle of exam {manifest.get('exam')}")
        return 1
    signatures = "; checkpoint signatures NOT checked" if report.skipped else ""
    print(f"\nALL CHECKS PASSED: exam {manifest.get('exam')}, chain head {head.get('fingerprint')}, "
          f"{len(entries)} entries, {len(papers)} papers, {len(tallies)} scores re-tallied{signatures}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check an exam audit bundle (standard library only).")
    parser.add_argument("bundle", help="the .zip written by `flask --app wsgi audit export EXAM FILE`")
    parser.add_argument("--expect-head", help="the chain fingerprint printed at publication, e.g. "
                                              "\"5321 · 3f2a 9b1c 0d4e 77aa\"")
    parser.add_argument("--public-key", help="the installation's public key (PEM) obtained independently")
    args = parser.parse_args(argv)
    return verify(args.bundle, args.expect_head, args.public_key)


if __name__ == "__main__":
    sys.exit(main())
