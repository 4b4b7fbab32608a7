/* The proctor console (/proctor/sittings/<code>) and the projector's access-code page.
 *
 * The console draws the room from one JSON document (room.json), fetched again every few seconds:
 * one request and one database statement for all the seats, whatever their number. Tiles are made
 * once and then only their texts change, so 200 seats stay cheap. Between two fetches the times
 * left count down here (they stand still while the room is paused), and the access code's rotation
 * is counted down to fetch the new code at once.
 *
 * Actions go through one dialog holding a plain form (CSRF token, reason): it posts, the server
 * redirects back here (post/redirect/get). Plain script, no build step, nothing inline (CSP).
 */
(function () {
  "use strict";

  function readJson(id) {
    const element = document.getElementById(id);
    if (!element) return {};
    try { return JSON.parse(element.textContent); } catch (error) { return {}; }
  }

  const messages = readJson("pc-i18n");

  function t(key, params) {
    const text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole);
  }

  /** 12:05 or 1:02:05, as the candidate's timer shows it. */
  function clockText(seconds) {
    const total = Math.max(0, Math.ceil(seconds));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const rest = total % 60;
    const two = (n) => String(n).padStart(2, "0");
    return hours ? `${hours}:${two(minutes)}:${two(rest)}` : `${two(minutes)}:${two(rest)}`;
  }

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = text;
    return element;
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text === undefined || text === null ? "" : String(text);
  }

  /** GET a JSON document of the console; null when signed out (the login page answered) or unreachable. */
  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin",
      cache: "no-store" });
    if (response.redirected || response.status === 401 || response.status === 403) {
      const error = new Error("signed out");
      error.signedOut = true;
      throw error;
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  /** The access code's rotation: counts down, asks for the new code when it runs out. */
  function codeRotation(onExpired) {
    const progress = document.getElementById("pc-code-progress");
    let seconds = progress ? Number(progress.value) || 0 : 0;
    let since = Date.now();
    let asked = false;
    function left() { return seconds - (Date.now() - since) / 1000; }
    function draw() {
      const remaining = Math.max(0, left());
      if (progress) progress.value = remaining;
      setText("pc-code-rotates", t("code_rotates", { n: Math.ceil(remaining) }));
      if (remaining <= 0 && !asked) {
        asked = true;
        onExpired();
      }
    }
    setInterval(draw, 250);
    draw();
    return {
      set(code, secondsLeft) {
        setText("pc-code", code);
        seconds = Number(secondsLeft) || 0;
        since = Date.now();
        asked = false;
        draw();
      },
    };
  }

  /* ================================================================== console */

  function consolePage(root) {
    const roomUrl = root.dataset.roomUrl;
    const sittingUrl = root.dataset.sittingUrl;
    const pollMs = Math.max(1, Number(root.dataset.pollSeconds) || 3) * 1000;
    const grid = document.getElementById("pc-seats");
    const seatDialog = document.getElementById("pc-seat-dialog");
    const actionDialog = document.getElementById("pc-action-dialog");
    const form = document.getElementById("pc-action-form");
    const tiles = new Map(); // registration number → {tile, parts}
    let order = "";
    let data = readJson("pc-data");
    let receivedAt = Date.now();
    let selected = null; // the registration number shown in the seat dialog
    let fetching = false;

    const rotation = codeRotation(() => refresh());

    function seatByNumber(number) {
      return (data.seats || []).find((seat) => seat.number === number) || null;
    }

    function elapsed() { return (Date.now() - receivedAt) / 1000; }

    function timeLeft(seat) {
      if (seat.section_left === null || seat.section_left === undefined) return null;
      const gone = data.sitting.paused ? 0 : elapsed();
      return { section: Math.max(0, seat.section_left - gone), total: Math.max(0, seat.total_left - gone) };
    }

    function heartbeatText(seat) {
      if (seat.heartbeat_ago === null || seat.heartbeat_ago === undefined) return seat.state === "answering" ||
        seat.state === "disconnected" ? t("no_heartbeat") : "";
      return t("seconds_ago", { n: Math.round(seat.heartbeat_ago + elapsed()) });
    }

    /* ---------------------------------------------------------------- tiles */

    function makeTile(seat) {
      const tile = el("button", "pc-seat");
      tile.type = "button";
      tile.dataset.number = seat.number;
      if (seat.seat !== null) tile.id = "pc-seat-" + seat.seat;
      const parts = {
        no: el("span", "pc-seat-no"),
        state: el("span", "pc-seat-state"),
        name: el("span", "pc-seat-name"),
        number: el("span", "pc-seat-number"),
        line: el("span", "pc-seat-line"),
        answered: el("span", "pc-seat-answered"),
        time: el("span", "pc-seat-time"),
        extra: el("span", "pc-seat-extra"),
        beat: el("span", "pc-seat-beat"),
      };
      parts.line.append(parts.answered, parts.time);
      tile.append(parts.no, parts.state, parts.name, parts.number, parts.line, parts.extra, parts.beat);
      tile.addEventListener("click", () => openSeat(seat.number));
      return { tile, parts };
    }

    function fillTile(entry, seat) {
      const { tile, parts } = entry;
      tile.dataset.state = seat.state;
      parts.no.textContent = seat.seat === null ? "—" : String(seat.seat);
      parts.state.textContent = t("state." + seat.state);
      parts.name.textContent = seat.name;
      parts.name.title = seat.name;
      parts.number.textContent = "SBD " + seat.number;
      const inProgress = seat.section_left !== null && seat.section_left !== undefined;
      const started = inProgress || seat.state === "submitted";
      parts.answered.textContent = started ? t("answered", { n: seat.answered, total: data.sitting.questions }) : "";
      if (inProgress) {
        parts.time.textContent = t("left", { time: clockText(timeLeft(seat).section) });
      } else if (seat.state === "submitted" && seat.submitted_at) {
        parts.time.textContent = t("submitted", { time: seat.submitted_at.slice(0, 5) });
      } else if (seat.checked_in && !started) {
        parts.time.textContent = t("checked_in", { time: seat.checked_in });
      } else {
        parts.time.textContent = "";
      }
      parts.extra.textContent = seat.extra_seconds ? t("extra", { n: Math.round(seat.extra_seconds / 60) }) : "";
      parts.extra.hidden = !seat.extra_seconds;
      parts.beat.textContent = [seat.ip, heartbeatText(seat)].filter(Boolean).join(" · ");
      tile.setAttribute("aria-label", [seat.seat === null ? t("no_seat") : t("seat_label", { n: seat.seat }),
        seat.name, t("state." + seat.state), parts.answered.textContent, parts.time.textContent].filter(Boolean)
        .join(", "));
    }

    function renderSeats() {
      const seats = data.seats || [];
      const wanted = seats.map((seat) => seat.number).join("\n");
      seats.forEach((seat) => {
        let entry = tiles.get(seat.number);
        if (!entry) {
          entry = makeTile(seat);
          tiles.set(seat.number, entry);
        }
        fillTile(entry, seat);
      });
      if (wanted !== order) { // new or moved seats: lay the tiles out again (rare)
        grid.replaceChildren(...seats.map((seat) => tiles.get(seat.number).tile));
        for (const number of Array.from(tiles.keys())) if (!seats.some((s) => s.number === number)) tiles.delete(number);
        order = wanted;
      }
      document.getElementById("pc-no-seats").hidden = seats.length > 0;
    }

    /* ---------------------------------------------------------------- room */

    function renderRoom() {
      const sitting = data.sitting;
      root.dataset.paused = String(Boolean(sitting.paused));
      const phase = document.getElementById("pc-phase");
      phase.dataset.phase = sitting.phase;
      phase.textContent = sitting.phase_label;
      document.getElementById("pc-open").hidden = !(sitting.phase === "waiting" || sitting.phase === "upcoming");
      document.getElementById("pc-pause").hidden = sitting.phase !== "running";
      document.getElementById("pc-resume").hidden = !sitting.paused;
      document.getElementById("pc-paused-banner").hidden = !sitting.paused;
      setText("pc-paused-since", sitting.paused_since || "");
      setText("pc-ends", sitting.ends_at);
      if (sitting.late_entry_until) setText("pc-late", sitting.late_entry_until);
      Object.entries(data.counts || {}).forEach(([state, count]) => setText("pc-count-" + state, count));
      rotation.set(sitting.access_code, sitting.code_seconds_left);
      renderIncidents();
      renderSeats();
      if (selected && seatDialog.open) fillSeatDialog();
    }

    function renderIncidents() {
      const list = document.getElementById("pc-incidents");
      const incidents = data.incidents || [];
      if (!incidents.length) {
        list.replaceChildren(el("li", "text-secondary", t("no_incidents")));
        return;
      }
      list.replaceChildren(...incidents.map((incident) => {
        const item = el("li");
        const where = incident.number ? t("seat_label", { n: incident.seat === null ? "—" : incident.seat }) +
          " · " + incident.number : t("room_incident");
        item.append(el("div", "pc-incident-head", `${incident.at} · ${incident.kind} · ${where}`),
          el("div", "pc-incident-text", incident.description), el("div", "pc-incident-by", incident.by));
        return item;
      }));
    }

    function showStale(text) {
      const box = document.getElementById("pc-stale");
      box.textContent = text || "";
      box.hidden = !text;
    }

    async function refresh() {
      if (fetching) return;
      fetching = true;
      try {
        data = await getJson(roomUrl);
        receivedAt = Date.now();
        showStale("");
        renderRoom();
      } catch (error) {
        showStale(error.signedOut ? t("signed_out") : t("stale"));
      } finally {
        fetching = false;
      }
    }

    function poll() {
      setTimeout(async () => {
        await refresh();
        poll();
      }, pollMs);
    }

    /** Every second: the times left and the heartbeat ages move on between two fetches. */
    function tick() {
      (data.seats || []).forEach((seat) => {
        const entry = tiles.get(seat.number);
        if (!entry) return;
        if (seat.section_left !== null && seat.section_left !== undefined) {
          entry.parts.time.textContent = t("left", { time: clockText(timeLeft(seat).section) });
        }
        entry.parts.beat.textContent = [seat.ip, heartbeatText(seat)].filter(Boolean).join(" · ");
      });
      if (selected && seatDialog.open) fillFacts();
    }

    /* ---------------------------------------------------------------- dialogs */

    const SEAT_ACTIONS = {
      extend: (seat) => !["submitted", "absent"].includes(seat.state),
      compensate: (seat) => ["answering", "disconnected"].includes(seat.state),
      move: (seat) => ["logged_in", "reading", "answering", "disconnected"].includes(seat.state),
      "force-submit": (seat) => ["answering", "disconnected"].includes(seat.state),
      absent: (seat) => ["not_arrived", "checked_in", "logged_in", "reading"].includes(seat.state),
      present: (seat) => seat.state === "absent",
      incident: () => true,
    };

    function seatTitle(seat) {
      return (seat.seat === null ? t("no_seat") : t("seat_label", { n: seat.seat })) + " · " + seat.name;
    }

    function fillFacts() {
      const seat = seatByNumber(selected);
      if (!seat) return;
      const facts = [[t("fact.number"), seat.number]];
      if (seat.section_left !== null && seat.section_left !== undefined) {
        const left = timeLeft(seat);
        facts.push([t("fact.answered"), t("answered", { n: seat.answered, total: data.sitting.questions })]);
        facts.push([t("fact.left"), t("left_detail", { section: clockText(left.section), total: clockText(left.total) })]);
      } else if (seat.state === "submitted") {
        facts.push([t("fact.answered"), t("answered", { n: seat.answered, total: data.sitting.questions })]);
        facts.push([t("fact.submitted"), [seat.submitted_at, seat.submitted_by].filter(Boolean).join(" · ")]);
      }
      if (seat.extra_seconds) facts.push([t("fact.extra"), t("minutes_n", { n: Math.round(seat.extra_seconds / 60) })]);
      const beat = heartbeatText(seat);
      if (beat) facts.push([t("fact.heartbeat"), beat]);
      if (seat.machine) facts.push([t("fact.machine"), seat.machine]);
      if (seat.checked_in) facts.push([t("fact.checked_in"), seat.checked_in]);
      const list = document.getElementById("pc-seat-facts");
      list.replaceChildren(...facts.flatMap(([term, value]) => [el("dt", "", term), el("dd", "", value)]));
    }

    function fillSeatDialog() {
      const seat = seatByNumber(selected);
      if (!seat) { seatDialog.close(); return; }
      setText("pc-seat-title", seatTitle(seat));
      const badge = document.getElementById("pc-seat-state");
      badge.dataset.state = seat.state;
      badge.textContent = t("state." + seat.state);
      fillFacts();
      seatDialog.querySelectorAll("[data-seat-action]").forEach((button) => {
        button.hidden = !SEAT_ACTIONS[button.dataset.seatAction](seat);
      });
    }

    function openSeat(number) {
      selected = number;
      fillSeatDialog();
      if (!seatDialog.open) seatDialog.showModal();
    }

    function show(id, visible) { document.getElementById(id).hidden = !visible; }

    async function loadProposal(seat) {
      const box = document.getElementById("pc-proposal");
      const submit = document.getElementById("pc-action-submit");
      box.hidden = false;
      box.textContent = t("loading");
      submit.disabled = true;
      try {
        const body = await getJson(`${sittingUrl}/seats/${encodeURIComponent(seat.number)}/compensation.json`);
        const proposal = body.proposal;
        if (!proposal || !proposal.seconds) {
          box.textContent = t("proposal_none");
          return;
        }
        box.textContent = t("proposal", proposal) + (proposal.ongoing ? " " + t("proposal_ongoing") : "");
        document.getElementById("seconds").value = String(proposal.seconds);
        submit.disabled = false;
      } catch (error) {
        box.textContent = error.signedOut ? t("signed_out") : t("stale");
      }
    }

    /** Open the action dialog: for the room (seat null) or one seat. */
    function openAction(action, seat) {
      if (seatDialog.open) seatDialog.close();
      const path = seat ? (action === "incident" ? "/incidents" : `/seats/${encodeURIComponent(seat.number)}/${action}`)
        : (action === "incident" ? "/incidents" : "/" + action);
      form.action = sittingUrl + path;
      setText("pc-action-title", t(action + ".title"));
      setText("pc-action-hint", t(action + ".hint"));
      setText("pc-action-target", seat ? t("target_seat", { seat: seat.seat === null ? "—" : seat.seat,
        name: seat.name, number: seat.number }) : t("target_room"));
      const submit = document.getElementById("pc-action-submit");
      submit.textContent = t(action + ".submit");
      submit.disabled = false;
      submit.className = "btn " + (["force-submit", "absent"].includes(action) ? "btn-danger"
        : action === "pause" ? "btn-warning" : "btn-primary");
      show("pc-field-minutes", action === "extend");
      show("pc-field-kind", action === "incident");
      show("pc-field-seat", action === "incident" && !seat);
      document.getElementById("registration_no").value = action === "incident" && seat ? seat.number : "";
      document.getElementById("seconds").value = "";
      document.getElementById("pc-proposal").hidden = true;
      const reason = document.getElementById("reason");
      reason.value = "";
      reason.placeholder = t(action + ".placeholder");
      if (action === "compensate") loadProposal(seat);
      actionDialog.showModal();
      (action === "extend" ? document.getElementById("minutes") : reason).focus();
    }

    document.querySelectorAll(".pc-toolbar [data-action]").forEach((button) => {
      button.addEventListener("click", () => openAction(button.dataset.action, null));
    });
    seatDialog.querySelectorAll("[data-seat-action]").forEach((button) => {
      button.addEventListener("click", () => {
        const seat = seatByNumber(selected);
        if (seat) openAction(button.dataset.seatAction, seat);
      });
    });
    document.querySelectorAll("dialog [data-close]").forEach((button) => {
      button.addEventListener("click", () => button.closest("dialog").close());
    });
    form.addEventListener("submit", () => {
      document.getElementById("pc-action-submit").disabled = true; // one post per click
    });

    renderRoom();
    setInterval(tick, 1000);
    poll();
  }

  /* ================================================================ projector */

  function projectorPage(body) {
    const url = body.dataset.codeUrl;
    let fetching = false;
    async function refresh() {
      if (fetching) return;
      fetching = true;
      try {
        const state = await getJson(url);
        rotation.set(state.access_code, state.code_seconds_left);
        document.getElementById("pc-projector-paused").hidden = !state.paused;
      } catch (error) {
        setTimeout(refresh, 3000); // the next rotation must still come through
      } finally {
        fetching = false;
      }
    }
    const rotation = codeRotation(refresh);
    setInterval(refresh, 15000);
    const full = document.getElementById("pc-fullscreen");
    full.addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen();
    });
  }

  const consoleRoot = document.getElementById("pc-console");
  if (consoleRoot) consolePage(consoleRoot);
  else if (document.body.dataset.page === "access-code") projectorPage(document.body);
})();
