/* The exam room's shared parts (docs/exam-room-contract.md):
 *   texts and addresses from the page's JSON blocks (#i18n, #exam-room-config);
 *   the candidate's session: the bearer token and the sign-in profile in sessionStorage;
 *   API calls, each of which re-reads the server's clock (offset = server_time - local time);
 *   the save queue: every answer change is written to localStorage before it is sent, sent in
 *   sequence order, kept and retried while the network is down;
 *   the countdown, dialogs and small formatting helpers.
 * Plain script, no build step: everything hangs off window.ExamRoom.
 */
(function () {
  "use strict";

  function readJson(id) {
    const element = document.getElementById(id);
    if (!element) return {};
    try { return JSON.parse(element.textContent); } catch (error) { return {}; }
  }

  const messages = readJson("i18n");
  const config = readJson("exam-room-config");
  const language = document.documentElement.lang || "vi";
  const locale = language === "vi" ? "vi-VN" : "en-GB";

  /** A translated text; {name} placeholders filled from params. */
  function t(key, params) {
    const text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole);
  }

  /* ---------------------------------------------------------------- session */

  const TOKEN_KEY = "examRoom.token";
  const PROFILE_KEY = "examRoom.profile";
  const QUEUE_PREFIX = "examRoom.pending.";

  const session = {
    token() {
      try { return sessionStorage.getItem(TOKEN_KEY); } catch (error) { return null; }
    },
    profile() {
      try { return JSON.parse(sessionStorage.getItem(PROFILE_KEY)) || {}; } catch (error) { return {}; }
    },
    begin(login) {
      sessionStorage.setItem(TOKEN_KEY, login.token);
      sessionStorage.setItem(PROFILE_KEY, JSON.stringify({
        candidate: login.candidate || {}, exam: login.exam || {}, sitting: login.sitting || {},
      }));
    },
    end() {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
        sessionStorage.removeItem(PROFILE_KEY);
      } catch (error) { /* storage disabled: nothing was kept */ }
    },
  };

  /* ------------------------------------------------------------------ clock */

  /** The server's clock as seen from here: every API answer carries server_time. */
  const clock = {
    offset: 0,
    update(serverTime, sentAt, receivedAt) {
      const server = Date.parse(serverTime);
      if (Number.isNaN(server)) return;
      // The server read its clock somewhere between sending and receiving: take the middle.
      this.offset = server - (sentAt + receivedAt) / 2;
    },
    now() { return Date.now() + this.offset; },
  };

  /* -------------------------------------------------------------------- API */

  /**
   * One API call. Never throws: resolves to {ok, status, body, code, message, network}.
   * status 0 with network=true when the server could not be reached (or did not answer in time).
   */
  async function api(method, path, body, options) {
    const timeout = (options && options.timeout) || 20000;
    const headers = Object.assign({ Accept: "application/json" }, options && options.headers);
    const token = session.token();
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = controller ? setTimeout(() => controller.abort(), timeout) : null;
    const sentAt = Date.now();
    let response;
    try {
      response = await fetch(config.api + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit", // the bearer token is the only credential: no cookie, no CSRF surface
        signal: controller ? controller.signal : undefined,
      });
    } catch (error) {
      return { ok: false, status: 0, body: null, code: "network", message: null, network: true };
    } finally {
      if (timer) clearTimeout(timer);
    }
    const receivedAt = Date.now();
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (data && typeof data.server_time === "string") clock.update(data.server_time, sentAt, receivedAt);
    const error = data && data.error && typeof data.error === "object" ? data.error : null;
    return {
      ok: response.ok,
      status: response.status,
      body: data,
      code: error ? error.code : (response.ok ? null : "http_" + response.status),
      message: error ? error.message : null,
      network: false,
    };
  }

  /** The message to show for a failed call: ours for a known code, else the server's, else generic. */
  function errorText(result) {
    if (result.network) return t("network");
    const key = "error." + result.code;
    if (Object.prototype.hasOwnProperty.call(messages, key)) return messages[key];
    return result.message || t("generic");
  }

  /* ------------------------------------------------------------- navigation */

  function pageUrl(name) { return config.pages[name]; }

  /** Go to another candidate page; replace=true leaves no history entry behind. */
  function go(name, options) {
    const url = pageUrl(name) + ((options && options.hash) || "");
    if (options && options.replace) window.location.replace(url);
    else window.location.assign(url);
  }

  /** Blank the page: what a Back button or a cached snapshot could still show. */
  function blank() {
    const main = document.getElementById("er-main");
    if (main) main.replaceChildren();
    document.querySelectorAll(".er-exambar, .er-topbar-who, dialog").forEach((element) => element.remove());
  }

  /** Logout or the end: nothing readable stays in this tab, and Back does not lead back in. */
  function leave(attemptId) {
    SaveQueue.discard(attemptId);
    session.end();
    blank();
    const signIn = pageUrl("sign_in");
    try { history.replaceState(null, "", signIn); } catch (error) { /* a very old browser */ }
    window.location.replace(signIn);
  }

  /** Pages other than sign-in need a token; without one, back to sign-in. */
  function requireSession() {
    if (session.token()) return true;
    blank();
    window.location.replace(pageUrl("sign_in"));
    return false;
  }

  // A page restored from the back-forward cache after logout must not show what it held.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && document.body.dataset.page !== "sign-in" && !session.token()) {
      blank();
      window.location.replace(pageUrl("sign_in"));
    }
  });

  /* ------------------------------------------------------------- save queue */

  /**
   * Answer changes waiting for the server, one entry per question (only the newest change of a
   * question needs sending), kept in localStorage under the attempt's id so that a crash, a
   * reload or a lost network loses nothing. Entries are sent one at a time, lowest seq first.
   *
   *   200        saved: the entry goes (unless a newer change of that question came meanwhile)
   *   409        stale: the server already holds a newer save of that question; drop, resync
   *   401        the session ended (logout elsewhere, moved to another machine): stop, keep
   *   403 room_paused  the proctor paused the room: keep, wait (the page sends them on resume)
   *   403/404/422 refused for good (deadline, section closed, ...): drop, resync
   *   network, 5xx  kept; retried after 1, 2, 4 ... 15 s, and at once when the browser is online
   */
  class SaveQueue {
    constructor(attemptId, hooks) {
      this.key = QUEUE_PREFIX + attemptId;
      this.hooks = hooks || {};
      this.entries = this.read();
      this.lastSeq = 0;
      this.sending = null;
      this.failures = 0;
      this.failing = false; // the last call could not reach the server
      this.stopped = false;
      this.retryTimer = null;
      this.waiters = [];
      this.lastState = null;
      window.addEventListener("online", () => this.retryNow());
    }

    static discard(attemptId) {
      if (attemptId === undefined || attemptId === null) return;
      try { localStorage.removeItem(QUEUE_PREFIX + attemptId); } catch (error) { /* nothing kept */ }
    }

    read() {
      try {
        const value = JSON.parse(localStorage.getItem(this.key) || "{}");
        return value && typeof value === "object" ? value : {};
      } catch (error) {
        return {};
      }
    }

    write() {
      try {
        if (Object.keys(this.entries).length) localStorage.setItem(this.key, JSON.stringify(this.entries));
        else localStorage.removeItem(this.key);
      } catch (error) {
        /* storage full or disabled: the entries still live in this page */
      }
    }

    /** After GET /attempt: drop what the server already holds, continue the sequence after both. */
    reconcile(serverAnswers, serverLastSeq) {
      const answers = serverAnswers || {};
      for (const [questionId, entry] of Object.entries(this.entries)) {
        const saved = answers[questionId];
        if (saved && typeof saved.seq === "number" && saved.seq >= entry.seq) delete this.entries[questionId];
      }
      const queued = Object.values(this.entries).map((entry) => entry.seq);
      this.lastSeq = Math.max(this.lastSeq, serverLastSeq || 0, ...queued);
      this.write();
      this.stopped = false;
      this.kick();
    }

    pending(questionId) { return this.entries[questionId] || null; }

    size() { return Object.keys(this.entries).length; }

    /** A change: stored first, then sent. Returns the entry (with its seq). */
    put(questionId, choices, flagged) {
      const entry = { choices: choices.slice(), flagged: Boolean(flagged), seq: ++this.lastSeq };
      this.entries[questionId] = entry;
      this.write();
      this.report();
      this.kick();
      return entry;
    }

    /** Resolves true once everything is saved, false when the server cannot be reached. */
    flush() {
      if (!this.size()) return Promise.resolve(true);
      if (this.stopped) return Promise.resolve(false);
      return new Promise((resolve) => {
        this.waiters.push(resolve);
        this.retryNow();
      });
    }

    retryNow() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.failures = 0;
      this.kick();
    }

    /** Connectivity seen by another call (the heartbeat). */
    connection(reachable) {
      const wasFailing = this.failing;
      this.failing = !reachable;
      if (reachable && wasFailing) this.retryNow();
      this.report();
    }

    state() {
      if (this.failing) return "offline";
      return this.size() || this.sending ? "saving" : "saved";
    }

    report() {
      const state = this.state();
      const count = this.size();
      if (this.hooks.onState) this.hooks.onState(state, count);
      this.lastState = state;
    }

    settle(result) {
      const waiters = this.waiters;
      this.waiters = [];
      waiters.forEach((resolve) => resolve(result));
    }

    next() {
      let best = null;
      for (const [questionId, entry] of Object.entries(this.entries)) {
        if (!best || entry.seq < best[1].seq) best = [questionId, entry];
      }
      return best;
    }

    async kick() {
      if (this.sending || this.stopped) return;
      const next = this.next();
      if (!next) {
        this.report();
        this.settle(true);
        return;
      }
      const [questionId, entry] = next;
      this.sending = questionId;
      this.report();
      const result = await api("PUT", "/attempt/answers/" + encodeURIComponent(questionId),
        { choices: entry.choices, flagged: entry.flagged, seq: entry.seq }, { timeout: 15000 });
      this.sending = null;
      const current = this.entries[questionId];
      const sameEntry = current && current.seq === entry.seq;

      if (result.network || result.status >= 500 || result.status === 408 || result.status === 429) {
        this.failing = true;
        this.failures += 1;
        const delay = Math.min(15, 2 ** (this.failures - 1)) * 1000;
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.kick(); }, delay);
        this.report();
        this.settle(false);
        return;
      }
      this.failing = false;
      this.failures = 0;
      if (result.status === 401) {
        this.stopped = true; // keep the entries: a new sign-in on this machine sends them
        this.report();
        this.settle(false);
        if (this.hooks.onSessionEnded) this.hooks.onSessionEnded();
        return;
      }
      if (result.code === "room_paused") {
        this.report(); // keep the entries: retryNow() sends them when the room resumes
        this.settle(false);
        if (this.hooks.onPaused) this.hooks.onPaused();
        return;
      }
      if (sameEntry) delete this.entries[questionId];
      this.write();
      if (result.ok) {
        if (this.hooks.onSaved) this.hooks.onSaved(questionId, entry, result.body || {});
      } else {
        const body = result.body || {};
        const currentSeq = body.current_seq || (body.error && body.error.current_seq);
        if (typeof currentSeq === "number") this.lastSeq = Math.max(this.lastSeq, currentSeq);
        if (this.hooks.onRejected) this.hooks.onRejected(questionId, entry, result);
      }
      this.kick();
    }
  }

  /* -------------------------------------------------------------- countdown */

  function formatDuration(milliseconds) {
    const total = Math.max(0, Math.ceil(milliseconds / 1000));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const seconds = total % 60;
    const two = (n) => String(n).padStart(2, "0");
    return hours ? `${hours}:${two(minutes)}:${two(seconds)}` : `${two(minutes)}:${two(seconds)}`;
  }

  /**
   * Time left until the open section's deadline, from the server's clock. Level "warn" from
   * 5 minutes, "danger" from 1 minute; onLevel when the level rises, onExpire once per deadline.
   * While the room is paused (set(..., true)) the clock stands still at the time left the server
   * reports (its deadlines move on with the pause, so deadline - server time stays the same).
   */
  class Countdown {
    constructor(hooks) {
      this.hooks = hooks || {};
      this.root = document.getElementById("er-timer");
      this.value = document.getElementById("er-timer-value");
      this.total = document.getElementById("er-timer-total");
      this.sectionDeadline = null;
      this.deadline = null;
      this.level = null;
      this.expired = null;
      this.shown = "";
      this.heldAt = null; // while paused: the moment the clock stands still at
      this.interval = setInterval(() => this.tick(), 250);
    }

    set(sectionDeadline, deadline, paused) {
      const section = Date.parse(sectionDeadline || deadline || "");
      const whole = Date.parse(deadline || sectionDeadline || "");
      this.sectionDeadline = Number.isNaN(section) ? null : Math.min(section, Number.isNaN(whole) ? section : whole);
      this.deadline = Number.isNaN(whole) ? null : whole;
      this.heldAt = paused ? clock.now() : null;
      if (this.root) this.root.dataset.paused = paused ? "true" : "false";
      if (this.expired !== null && this.expired !== this.sectionDeadline) this.expired = null;
      this.tick();
    }

    now() { return this.heldAt === null ? clock.now() : this.heldAt; }

    left() { return this.sectionDeadline === null ? null : this.sectionDeadline - this.now(); }

    tick() {
      if (!this.root || this.sectionDeadline === null) return;
      const left = this.left();
      const text = formatDuration(left);
      if (text !== this.shown) {
        this.value.textContent = text;
        this.shown = text;
        if (this.total) {
          const wholeLeft = this.deadline === null ? null : this.deadline - this.now();
          const differs = wholeLeft !== null && wholeLeft - left > 1000;
          this.total.textContent = differs ? t("time_left_total", { time: formatDuration(wholeLeft) }) : "";
          this.total.hidden = !differs;
        }
      }
      const level = left <= 60000 ? "danger" : left <= 300000 ? "warn" : "normal";
      if (level !== this.level) {
        const rising = this.level !== null && (level === "danger" || (level === "warn" && this.level === "normal"));
        this.root.dataset.level = level;
        this.level = level;
        if (rising && left > 0 && this.hooks.onLevel) this.hooks.onLevel(level);
      }
      if (left <= 0 && this.expired !== this.sectionDeadline) {
        this.expired = this.sectionDeadline;
        if (this.hooks.onExpire) this.hooks.onExpire();
      }
    }
  }

  /* ---------------------------------------------------------------- dialogs */

  /** A confirmation: resolves true for OK. body is a list of paragraphs. */
  function confirmDialog(title, body, okLabel) {
    const dialog = document.getElementById("er-confirm");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(title));
    document.getElementById("er-confirm-title").textContent = title;
    const container = document.getElementById("er-confirm-body");
    container.replaceChildren(...body.filter(Boolean).map((text) => {
      const p = document.createElement("p");
      p.textContent = text;
      return p;
    }));
    document.getElementById("er-confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
      document.getElementById("er-confirm-cancel").focus(); // the safe choice has the focus
    });
  }

  /** A notice the candidate cannot dismiss (time over, session ended); notice(null) closes it. */
  function notice(text, options) {
    const dialog = document.getElementById("er-notice");
    if (!dialog) return;
    if (text === null) {
      if (dialog.open) dialog.close();
      return;
    }
    document.getElementById("er-notice-text").textContent = text;
    document.getElementById("er-notice-actions").hidden = !(options && options.signIn);
    if (!dialog.dataset.bound) {
      dialog.addEventListener("cancel", (event) => event.preventDefault()); // Escape does not hide it
      dialog.dataset.bound = "1";
    }
    if (!dialog.open) dialog.showModal();
  }

  function dialogOpen() {
    return Boolean(document.querySelector("dialog[open]"));
  }

  let toastTimer = null;
  function toast(text) {
    const element = document.getElementById("er-toast");
    if (!element) return;
    element.textContent = text;
    element.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { element.hidden = true; }, 6000);
  }

  function announce(text) {
    const element = document.getElementById("er-announcer");
    if (!element) return;
    element.textContent = "";
    setTimeout(() => { element.textContent = text; }, 50);
  }

  /* ------------------------------------------------------------- formatting */

  /** A time in the exam centre's zone (not the lab machine's), with seconds unless withSeconds is false. */
  function formatDateTime(iso, withSeconds) {
    const value = Date.parse(iso || "");
    if (Number.isNaN(value)) return "";
    const options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      hour12: false };
    if (withSeconds !== false) options.second = "2-digit";
    try {
      return new Intl.DateTimeFormat(locale, { ...options, timeZone: config.timezone }).format(value);
    } catch (error) {
      return new Intl.DateTimeFormat(locale, options).format(value);
    }
  }

  function formatNumber(value) {
    if (typeof value !== "number") return String(value === undefined || value === null ? "" : value);
    return new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(value);
  }

  /** Fill the header's candidate line from the sign-in profile. */
  function showCandidate() {
    const candidate = session.profile().candidate || {};
    const who = document.getElementById("er-who");
    if (!who || !candidate.registration_no) return;
    document.getElementById("er-who-name").textContent = candidate.full_name || "";
    document.getElementById("er-who-number").textContent = candidate.registration_no;
    who.hidden = false;
  }

  function setText(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text === undefined || text === null ? "" : String(text);
  }

  function showError(id, text) {
    const element = document.getElementById(id);
    if (!element) return;
    element.textContent = text || "";
    element.hidden = !text;
  }

  const LETTERS = "ABCDEFGHIJ";

  window.ExamRoom = {
    t, config, language, session, clock, api, errorText, go, leave, blank, requireSession, SaveQueue,
    Countdown, formatDuration, confirmDialog, notice, dialogOpen, toast, announce, formatDateTime, formatNumber,
    showCandidate, setText, showError, LETTERS,
  };
})();
