"""Load benchmark: simulated lab machines against the app served by bin/serve (granian) on loopback.

    .venv/bin/python bench/load.py [--candidates 10000] [--duration 600] [--phases abcdefg] ...
    .venv/bin/python bench/load.py --candidates 2000 --duration 30 --submissions 1000   # a quick run

Sets up a throw-away exam room through the app's own rules (bench/room.py: the demo bank,
examples/round1.toml published, sittings of 40 seats opened, N candidates from a roster
file, their papers), starts bin/serve on it (SQLite in a temporary instance folder unless
--database-url names a throw-away PostgreSQL database), then drives these phases with
asyncio + aiohttp, one simulated lab machine per candidate:

  a  logins spread over --login-window seconds (open loop);
  b  synchronized start: --start-candidates candidates press Start (POST /attempt/start)
     and load the exam page (GET /attempt) within one second; then the others start;
  c  steady saves, open loop: every candidate saves every --save-period seconds (10,000
     candidates → 1,000 saves/s), with answer changes, flags and a heartbeat every 20–30 s,
     for --duration seconds;
  d  --submissions candidates submit within --submit-window seconds while the others
     keep saving;
  e  overload: saves at --overload × the steady rate for --overload-duration seconds
     (expect longer waits, never a 5xx or "database is locked");
  f  saturation: saves/s in a closed loop over --saturation-connections connections, and
     GET /healthz (no database) measured the same way, and their ratio;
  g  the check: every acknowledged answer is in the database with its latest seq.

Open loop means each request leaves at its scheduled time whatever happened to the earlier
ones; how late the generator itself sent them is reported too (it shares the machine's
cores with the server). Latency is from sending to the full answer (client-side queueing
for a free connection included).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import pyotp  # noqa: E402

from bench.room import build_room, date_of_birth, registration_no, sitting_secrets  # noqa: E402
from exam.setup.sittings import ACCESS_CODE_DIGITS, ACCESS_CODE_SECONDS  # noqa: E402

USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) bench-lab/1.0"


# --- measurements ------------------------------------------------------------------------------------

def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, every answered request
    statuses: Counter = field(default_factory=Counter)  # HTTP status, or the exception's name
    lateness: list[float] = field(default_factory=list)  # open loop: how late the generator sent it


class Phase:
    """Per endpoint: latencies and statuses of one phase; printed as a table."""

    def __init__(self, name: str):
        self.name = name
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.notes: list[str] = []

    def record(self, endpoint: str, status, latency: float | None, late: float | None = None) -> None:
        tally = self.tallies[endpoint]
        tally.statuses[status] += 1
        if latency is not None:
            tally.latencies.append(latency)
        if late is not None:
            tally.lateness.append(late)

    def close(self) -> None:
        self.ended = time.perf_counter()

    def report(self) -> str:
        seconds = (self.ended or time.perf_counter()) - self.started
        lines = [f"\n== {self.name}  ({seconds:.1f} s)"]
        lines.append(f"  {'endpoint':<22}{'requests':>9}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
                     f"{'max ms':>9}  statuses  [generator lateness p50/p99 ms]")
        for endpoint, tally in sorted(self.tallies.items()):
            values = sorted(tally.latencies)
            n = sum(tally.statuses.values())
            late = sorted(tally.lateness)
            late_text = (f"  [{percentile(late, 50) * 1000:.1f}/{percentile(late, 99) * 1000:.1f}]"
                         if late else "")
            statuses = " ".join(f"{k}:{v}" for k, v in sorted(tally.statuses.items(), key=lambda kv: str(kv[0])))
            lines.append(f"  {endpoint:<22}{n:>9}{n / seconds:>9.1f}{percentile(values, 50) * 1000:>9.1f}"
                         f"{percentile(values, 95) * 1000:>9.1f}{percentile(values, 99) * 1000:>9.1f}"
                         f"{(values[-1] if values else float('nan')) * 1000:>9.1f}  {statuses}{late_text}")
        lines.extend("  " + note for note in self.notes)
        return "\n".join(lines)


# --- one simulated lab machine -----------------------------------------------------------------------

@dataclass
class Machine:
    number: int  # candidate index, 1-based
    sitting: str
    token: str = ""
    questions: list = field(default_factory=list)  # [(id, [option ids], multiple)]
    seq: int = 0
    answered: list = field(default_factory=list)  # question indexes answered so far, in order
    status: str = "not_started"
    acked: dict = field(default_factory=dict)  # question id → (seq, choices) of the latest 200
    sent: dict = field(default_factory=lambda: defaultdict(set))  # question id → seqs sent

    @property
    def registration_no(self) -> str:
        return registration_no(self.number)


class Lab:
    def __init__(self, base_url: str, session: aiohttp.ClientSession, secrets_by_sitting: dict[str, str]):
        self.base = base_url + "/api/v1"
        self.http = session
        self.totp = {code: pyotp.TOTP(secret, digits=ACCESS_CODE_DIGITS, interval=ACCESS_CODE_SECONDS)
                     for code, secret in secrets_by_sitting.items()}
        self.rng = random.Random(2026)

    async def request(self, phase: Phase, endpoint: str, method: str, path: str, *, token: str = "",
                      body=None, late: float | None = None, want_body: bool = False, prefer: str = ""):
        headers = {"User-Agent": USER_AGENT}
        if prefer:
            headers["Prefer"] = prefer
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"))
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            async with self.http.request(method, self.base + path, data=data, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            phase.record(endpoint, type(exc).__name__, None, late)
            return None, None
        phase.record(endpoint, status, time.perf_counter() - started, late)
        parsed = None
        if want_body or status >= 400:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if status >= 500:
                phase.notes.append(f"{endpoint} {status}: {raw[:200]!r}") if len(phase.notes) < 20 else None
        return status, parsed

    async def login(self, phase: Phase, machine: Machine, late: float | None = None) -> None:
        status, body = await self.request(phase, "POST /login", "POST", "/login", late=late, want_body=True, body={
            "registration_no": machine.registration_no,
            "date_of_birth": date_of_birth(machine.number).isoformat(),
            "access_code": self.totp[machine.sitting].now()})
        if status == 200:
            machine.token = body["token"]
            machine.status = body["attempt"]["status"]

    def take_paper(self, machine: Machine, body: dict) -> None:
        machine.status = body["attempt"]["status"]
        open_position = body["attempt"]["section_position"]
        machine.questions = [(q["id"], [o["id"] for o in q["options"]], q["type"] == "multiple")
                             for q in body["questions"] if q["section"] == open_position]
        machine.seq = max(machine.seq, body["attempt"]["last_seq"] or 0)

    async def start(self, phase: Phase, machine: Machine, late: float | None = None) -> None:
        # As the instructions page does: the exam page then loads the attempt (GET /attempt).
        status, body = await self.request(phase, "POST /attempt/start", "POST", "/attempt/start",
                                          token=machine.token, late=late, prefer="return=minimal")
        if status != 200:
            return
        status, body = await self.request(phase, "GET /attempt", "GET", "/attempt", token=machine.token,
                                          want_body=True)
        if status == 200:
            self.take_paper(machine, body)

    def next_save(self, machine: Machine) -> tuple[str, list[str], int, bool | None]:
        """The next change the candidate makes: mostly the next question, sometimes an answer change."""
        rng = self.rng
        n = len(machine.questions)
        if machine.answered and (len(machine.answered) >= n or rng.random() < 0.25):
            index = rng.choice(machine.answered)  # changes an earlier answer
        else:
            index = len(machine.answered)
            machine.answered.append(index)
        question_id, options, multiple = machine.questions[index]
        if multiple and rng.random() < 0.5:
            choices = sorted(rng.sample(range(len(options)), 2))
        else:
            choices = [rng.randrange(len(options))]
        machine.seq += 1
        flagged = True if rng.random() < 0.03 else None
        return question_id, [options[i] for i in choices], machine.seq, flagged

    async def save(self, phase: Phase, machine: Machine, late: float | None = None) -> int | None:
        if not machine.questions:
            return None
        question_id, choices, seq, flagged = self.next_save(machine)
        body = {"choices": choices, "seq": seq}
        if flagged is not None:
            body["flagged"] = flagged
        machine.sent[question_id].add(seq)
        status, _ = await self.request(phase, "PUT /answers", "PUT", f"/attempt/answers/{question_id}",
                                       token=machine.token, body=body, late=late)
        if status == 200 and seq > machine.acked.get(question_id, (0, None))[0]:
            machine.acked[question_id] = (seq, choices)
        return status

    async def heartbeat(self, phase: Phase, machine: Machine, late: float | None = None) -> None:
        await self.request(phase, "POST /heartbeat", "POST", "/attempt/heartbeat", token=machine.token,
                           body={"answered": len(machine.answered)}, late=late)

    async def submit(self, phase: Phase, machine: Machine, late: float | None = None) -> None:
        status, body = await self.request(phase, "POST /submit", "POST", "/attempt/submit", token=machine.token,
                                          body={"confirm": True}, late=late, want_body=True)
        if status == 200:
            machine.status = body["status"]


# --- open-loop driving -------------------------------------------------------------------------------

async def open_loop(events, run, follow=None, *, until: float | None = None) -> None:
    """Send each event at its time, without waiting for earlier answers. ``events`` is a heap of
    (time, order, kind, machine); ``run(kind, machine, late)`` sends it; ``follow(kind, machine, at)``
    gives that machine's next (time, kind), or None."""
    loop = asyncio.get_running_loop()
    tasks = set()
    order = len(events)
    while events:
        at, _, kind, machine = events[0]
        if until is not None and at >= until:
            break
        delay = at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
            continue
        heapq.heappop(events)
        task = asyncio.ensure_future(run(kind, machine, -delay))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        nxt = follow(kind, machine, at) if follow else None
        if nxt is not None:
            order += 1
            heapq.heappush(events, (nxt[0], order, nxt[1], machine))
    if tasks:
        await asyncio.gather(*tasks)


def steady_follow(period: float, rng: random.Random):
    def follow(kind, _machine, at):
        if kind == "save":
            return at + period, "save"
        if kind == "heartbeat":
            return at + rng.uniform(20, 30), "heartbeat"
        return None
    return follow


# --- the server --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(instance: Path, port: int, args) -> subprocess.Popen:
    """bin/serve, as in production, on an app of the throw-away room (a module in its instance folder)."""
    config = {"SECRET_KEY": "bench-secret",
              "DATABASE_URL": args.database_url or f"sqlite:///{instance / 'exam.sqlite3'}",
              "SAVE_BATCH_STATS_SECONDS": 10}
    if args.batching:
        config["SAVE_BATCHING"] = args.batching
    (instance / "bench_app.py").write_text(
        "import gc\n\nfrom exam.app import create_app\n\n"
        f"app = create_app(test_config={config!r}, instance_path={str(instance)!r})\n"
        "gc.collect()\ngc.freeze()  # as wsgi.py does\n")
    command = [str(ROOT / "bin" / "serve")]
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), WORKERS=str(args.workers), THREADS=str(args.threads),
               APP="bench_app:app", PYTHONPATH=f"{instance}{os.pathsep}{ROOT}")
    log = open(instance / "server.log", "w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"bin/serve exited: see {instance / 'server.log'}") from None
            time.sleep(0.2)
    print(f"server: bin/serve (granian) with WORKERS={args.workers} THREADS={args.threads}")
    return server


def process_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants still running (utime + stime), from /proc: the server's
    workers and the writer process one of them started."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids, found = [pid], 0
    while found < len(pids):
        try:
            pids += [int(p) for p in Path(f"/proc/{pids[found]}/task/{pids[found]}/children").read_text().split()]
        except OSError:
            pass
        found += 1
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


# --- phases ------------------------------------------------------------------------------------------

async def phase_logins(lab: Lab, machines: list[Machine], window: float) -> Phase:
    phase = Phase(f"a. logins: {len(machines)} spread over {window:.0f} s (open loop)")
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5
    events = [(t0 + window * i / len(machines), i, "login", m) for i, m in enumerate(machines)]
    heapq.heapify(events)

    async def run(kind, machine, late):
        await lab.login(phase, machine, late)

    await open_loop(events, run)
    phase.close()
    return phase


async def phase_start(lab: Lab, machines: list[Machine], synchronized: int) -> list[Phase]:
    first, rest = machines[:synchronized], machines[synchronized:]
    phase = Phase(f"b. synchronized start: {len(first)} candidates press Start and load the exam page within 1 s")
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    events = [(t0 + i / len(first), i, "start", m) for i, m in enumerate(first)]
    heapq.heapify(events)
    began = time.perf_counter()
    done_at = []

    async def run(kind, machine, late):
        await lab.start(phase, machine, late)
        done_at.append(time.perf_counter() - began)

    await open_loop(events, run)
    phase.close()
    if done_at:
        phase.notes.append(f"the last of them had its paper {max(done_at):.2f} s after the first pressed Start")
    phases = [phase]
    if rest:
        others = Phase(f"b'. the other {len(rest)} candidates start (400 per second; not part of the target)")
        t0 = loop.time() + 0.2
        events = [(t0 + i / 400, i, "start", m) for i, m in enumerate(rest)]
        heapq.heapify(events)

        async def run_rest(kind, machine, late):
            await lab.start(others, machine, late)

        await open_loop(events, run_rest)
        others.close()
        phases.append(others)
    return phases


def steady_events(machines: list[Machine], period: float, t0: float, rng: random.Random, heartbeats: bool = True):
    events = []
    order = 0
    for m in machines:
        events.append((t0 + rng.uniform(0, period), order, "save", m))
        order += 1
        if heartbeats:
            events.append((t0 + rng.uniform(0, 25), order, "heartbeat", m))
            order += 1
    heapq.heapify(events)
    return events


async def phase_saves(lab: Lab, machines: list[Machine], period: float, duration: float, title: str,
                      heartbeats: bool = True) -> Phase:
    phase = Phase(title)
    loop = asyncio.get_running_loop()
    rng = random.Random(len(machines))
    t0 = loop.time() + 0.2
    events = steady_events(machines, period, t0, rng, heartbeats)

    async def run(kind, machine, late):
        if kind == "save":
            await lab.save(phase, machine, late)
        else:
            await lab.heartbeat(phase, machine, late)

    await open_loop(events, run, steady_follow(period, rng), until=t0 + duration)
    phase.close()
    return phase


async def phase_submissions(lab: Lab, submitting: list[Machine], others: list[Machine], window: float,
                            period: float) -> Phase:
    phase = Phase(f"d. {len(submitting)} submissions within {window:.0f} s, while {len(others)} others keep "
                  f"saving every {period:g} s")
    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    t0 = loop.time() + 0.2
    events = steady_events(others, period, t0, rng, heartbeats=True)
    order = len(events)
    for i, m in enumerate(submitting):
        heapq.heappush(events, (t0 + window * i / len(submitting), order + i, "submit", m))

    async def run(kind, machine, late):
        if kind == "submit":
            await lab.submit(phase, machine, late)
        elif kind == "save":
            await lab.save(phase, machine, late)
        else:
            await lab.heartbeat(phase, machine, late)

    await open_loop(events, run, steady_follow(period, rng), until=t0 + window + 0.5)
    phase.close()
    return phase


async def phase_saturation(lab: Lab, machines: list[Machine], connections: int, seconds: float) -> Phase:
    phase = Phase(f"f. saturation: closed loop over {connections} connections, {seconds:.0f} s each")
    per_loop = [machines[i::connections] for i in range(connections)]

    async def saves(own: list[Machine], stop: float):
        i = 0
        while time.perf_counter() < stop and own:
            await lab.save(phase, own[i % len(own)])
            i += 1

    async def health(stop: float):
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                async with lab.http.get(lab.base.rsplit("/api/v1", 1)[0] + "/healthz") as response:
                    await response.read()
                    phase.record("GET /healthz", response.status, time.perf_counter() - started)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                phase.record("GET /healthz", type(exc).__name__, None)

    stop = time.perf_counter() + seconds
    began = time.perf_counter()
    await asyncio.gather(*(saves(own, stop) for own in per_loop))
    save_rate = sum(phase.tallies["PUT /answers"].statuses.values()) / (time.perf_counter() - began)
    stop = time.perf_counter() + seconds
    began = time.perf_counter()
    await asyncio.gather(*(health(stop) for _ in range(connections)))
    health_rate = sum(phase.tallies["GET /healthz"].statuses.values()) / (time.perf_counter() - began)
    phase.close()
    phase.notes.append(f"saves/s at saturation {save_rate:.0f}; GET /healthz/s {health_rate:.0f}; "
                       f"ratio {save_rate / health_rate:.2f} (aim: at least 0.5)")
    return phase


def check_database(app, machines: list[Machine]) -> list[str]:
    """Every acknowledged save is stored with its seq, or a later one of the same question that was sent."""
    from sqlalchemy import select

    from exam.core.db import get_session
    from exam.room.models import Attempt, Response
    from exam.setup.models import Candidate, PaperItem

    lines = []
    with app.app_context():
        db = get_session()
        rows = db.execute(select(Candidate.registration_no, PaperItem.public_id, Response.seq, Response.choices)
                          .join(Attempt, Attempt.candidate_id == Candidate.id)
                          .join(Response, Response.attempt_id == Attempt.id)
                          .join(PaperItem, PaperItem.id == Response.item_id)).all()
        stored = {(number, question): (seq, choices) for number, question, seq, choices in rows}
        status_of = dict(db.execute(select(Candidate.registration_no, Attempt.status)
                                    .join(Attempt, Attempt.candidate_id == Candidate.id)).all())
    acknowledged = missing = older = different = unsent_newer = 0
    for m in machines:
        for question, (seq, choices) in m.acked.items():
            acknowledged += 1
            found = stored.get((m.registration_no, question))
            if found is None:
                missing += 1
            elif found[0] < seq:
                older += 1
            elif found[0] == seq and list(found[1]) != choices:
                different += 1
            elif found[0] > seq and found[0] not in m.sent[question]:
                unsent_newer += 1
    submitted_ok = sum(1 for m in machines if m.status == "submitted" and status_of.get(m.registration_no)
                       != "submitted")
    lines.append(f"acknowledged answers checked: {acknowledged:,}; missing {missing}, older seq stored {older}, "
                 f"same seq other choices {different}, newer seq never sent {unsent_newer}; "
                 f"acknowledged submissions not submitted: {submitted_ok}")
    lines.append(f"stored answers: {len(stored):,}")
    return lines


# --- main --------------------------------------------------------------------------------------------

async def drive(args, base_url: str, secrets_by_sitting: dict, machines: list[Machine], server_pid: int,
                app) -> None:
    connector = aiohttp.TCPConnector(limit=args.connections, limit_per_host=args.connections, force_close=False,
                                     enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        lab = Lab(base_url, http, secrets_by_sitting)
        phases = args.phases
        steady_rate = args.rate or len(machines) / args.save_period
        period = len(machines) / steady_rate

        def run_phase(label, make):
            async def wrapped():
                gc.collect()  # between phases: the generator's own garbage, never while one runs
                cpu_server, cpu_client = process_cpu_seconds(server_pid), time.process_time()
                wall = time.perf_counter()
                results = await make()
                results = results if isinstance(results, list) else [results]
                wall = time.perf_counter() - wall
                server = process_cpu_seconds(server_pid) - cpu_server
                client = time.process_time() - cpu_client
                for phase in results:
                    print(phase.report(), flush=True)
                print(f"  CPU during {label}: server {server:.1f} s ({server / wall * 100:.0f}% of one core), "
                      f"load generator {client:.1f} s ({client / wall * 100:.0f}%)", flush=True)
                return results
            return wrapped()

        if "a" in phases:
            await run_phase("logins", lambda: phase_logins(lab, machines, args.login_window))
        else:
            await run_phase("logins", lambda: phase_logins(lab, machines, max(5.0, len(machines) / 500)))
        await run_phase("start", lambda: phase_start(lab, [m for m in machines if m.token],
                                                     args.start_candidates if "b" in phases else 0))
        live = [m for m in machines if m.questions]
        if "c" in phases:
            await run_phase("steady saves", lambda: phase_saves(
                lab, live, period, args.duration,
                f"c. steady saves: {len(live)} candidates saving every {period:g} s "
                f"({len(live) / period:.0f} saves/s) + a heartbeat every 20-30 s, for {args.duration:.0f} s"))
        if "d" in phases:
            submitting, others = live[:args.submissions], live[args.submissions:]
            await run_phase("submissions", lambda: phase_submissions(lab, submitting, others, args.submit_window,
                                                                     period))
        remaining = [m for m in live if m.status != "submitted"]
        if "e" in phases and remaining:
            rate = args.overload * steady_rate
            await run_phase("overload", lambda: phase_saves(
                lab, remaining, len(remaining) / rate, args.overload_duration,
                f"e. overload: {rate:.0f} saves/s ({args.overload:g}x) from {len(remaining)} candidates, "
                f"for {args.overload_duration:.0f} s", heartbeats=True))
        if "f" in phases and remaining:
            await run_phase("saturation", lambda: phase_saturation(lab, remaining, args.saturation_connections,
                                                                   args.saturation_seconds))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--phases", default="abcdefg", help="which of a-g to run (logins and starts always run)")
    parser.add_argument("--login-window", type=float, default=60.0)
    parser.add_argument("--start-candidates", type=int, default=1000)
    parser.add_argument("--save-period", type=float, default=10.0, help="seconds between a candidate's saves")
    parser.add_argument("--rate", type=float, help="steady saves/s (default: candidates / save period)")
    parser.add_argument("--duration", type=float, default=600.0, help="steady phase, seconds")
    parser.add_argument("--submissions", type=int, default=5000)
    parser.add_argument("--submit-window", type=float, default=60.0)
    parser.add_argument("--overload", type=float, default=2.0)
    parser.add_argument("--overload-duration", type=float, default=60.0)
    parser.add_argument("--saturation-connections", type=int, default=64)
    parser.add_argument("--saturation-seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=512, help="client connection pool")
    parser.add_argument("--timeout", type=float, default=60.0, help="client timeout per request, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--batching", help="SAVE_BATCHING for the server (auto/on/off; default: the app's)")
    parser.add_argument("--database-url", help="a throw-away PostgreSQL database (its name must start with 'bench')")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance folder")
    args = parser.parse_args(argv)

    instance = Path(tempfile.mkdtemp(prefix="bench-load-"))
    server = None
    try:
        print(f"setting up {args.candidates} candidates in {instance} ...", flush=True)
        room = build_room(instance, candidates=args.candidates, database_url=args.database_url)
        secrets_by_sitting = sitting_secrets(room.app, room.sittings)
        engine = room.app.extensions["exam_db"].engine
        engine.dispose()
        port = free_port()
        server = start_server(instance, port, args)
        dialect = engine.dialect.name
        print(f"database: {dialect}{' (WAL, synchronous=FULL)' if dialect == 'sqlite' else ''}; "
              f"SAVE_BATCHING={args.batching or 'app default (auto)'}; {os.cpu_count()} CPUs shared with this "
              f"load generator", flush=True)
        machines = [Machine(i, room.sittings[(i - 1) // 40]) for i in range(1, args.candidates + 1)]
        # The generator must not pause on its own: its collector would walk the whole room's state and a
        # phase's schedule (840,000 events for 10 minutes: pauses of hundreds of milliseconds) while
        # answers wait unread. What exists now is kept out of its reach, and it runs between phases only.
        gc.collect()
        gc.freeze()
        gc.disable()
        asyncio.run(drive(args, f"http://127.0.0.1:{port}", secrets_by_sitting, machines, server.pid, room.app))
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        server = None
        log = (instance / "server.log").read_text(errors="replace")
        batch_lines = {}
        for line in log.splitlines():  # the last figures of each worker's group commit
            if "group commit:" in line and " pid " in line:
                batch_lines[line.split(" pid ", 1)[1].split()[0]] = line.split(" pid ", 1)[1]
        for line in batch_lines.values():
            print("server: pid " + line)
        locked = log.count("database is locked")
        tracebacks = log.count("Traceback")
        print(f"\nserver log: {locked} 'database is locked', {tracebacks} tracebacks", flush=True)
        if "g" in args.phases:
            print("== g. database check")
            for line in check_database(room.app, machines):
                print("  " + line)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        if args.keep:
            print(f"kept {instance}")
        else:
            shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
