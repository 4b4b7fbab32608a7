/* The exam page (/thi/bai-thi) and the review page (/thi/xem-lai).
 *
 * State comes from GET /api/v1/attempt; every answer change goes through the save queue
 * (exam_room_core.js) so it is kept on this machine until the server has it. What the page
 * shows for a question is the newest of: the queued change, the server's saved answer.
 * The clock is the server's: the countdown runs to the open section's deadline; when it
 * passes, the page sends what it holds and reloads the attempt from the server. When the proctor
 * pauses the room (``paused`` in GET /attempt and the heartbeat), a notice covers the page, the
 * countdown stands still and answers wait; on resume the clock runs on from the same time left.
 */
(function () {
  "use strict";

  const R = window.ExamRoom;
  const { t } = R;
  const HEARTBEAT_MS = Math.max(1, Number(R.config.heartbeat_seconds) || 20) * 1000;
  const PAUSED_HEARTBEAT_MS = Math.min(HEARTBEAT_MS, 5000); // while paused: learn of the resume soon

  const state = {
    page: document.body.dataset.page,
    data: null, // the last GET /attempt body
    attempt: null,
    sections: [],
    questions: [],
    byId: new Map(),
    saved: {}, // question id -> {choices, flagged, seq}: what the server acknowledged
    savedAt: {}, // question id -> true once saved during this page's life
    current: null, // question id on screen
    openPosition: null,
    queue: null,
    countdown: null,
    resyncing: null,
    ended: false,
    paused: false, // the proctor paused the room
  };

  /* ------------------------------------------------------------ the model */

  function sectionOf(question) {
    return state.sections.find((section) => section.position === question.section || section.code === question.section);
  }

  function questionsOf(section) {
    return state.questions.filter((question) => sectionOf(question) === section);
  }

  function openSection() {
    return state.sections.find((section) => section.state === "open") || null;
  }

  function answerable(question) {
    const section = sectionOf(question);
    return Boolean(section && section.state === "open" && state.attempt.status === "in_progress" && !state.ended &&
      !state.paused);
  }

  /** What the candidate has chosen for a question: the queued change if any, else the saved answer. */
  function answerOf(questionId) {
    const pending = state.queue && state.queue.pending(questionId);
    if (pending) return { choices: pending.choices, flagged: pending.flagged, pending: true };
    const saved = state.saved[questionId];
    return { choices: saved ? saved.choices || [] : [], flagged: Boolean(saved && saved.flagged), pending: false };
  }

  function isAnswered(questionId) { return answerOf(questionId).choices.length > 0; }

  function lettersOf(question, choices) {
    return question.options.map((option, index) => (choices.includes(option.id) ? R.LETTERS[index] : null))
      .filter(Boolean).join(", ");
  }

  /* ------------------------------------------------------- loading state */

  /** Take a GET /attempt (or start / section next) body as the truth. */
  function apply(data) {
    const attempt = data.attempt || {};
    if (attempt.status === "submitted") { finished(attempt.id); return false; }
    if (attempt.status !== "in_progress") { R.go("instructions", { replace: true }); return false; }
    const previousOpen = state.openPosition;
    state.data = data;
    state.attempt = attempt;
    state.sections = (data.sections || []).slice().sort((a, b) => a.position - b.position);
    state.questions = (data.questions || []).slice();
    state.byId = new Map(state.questions.map((question) => [String(question.id), question]));
    state.saved = data.answers || {};
    if (!state.queue) {
      state.queue = new R.SaveQueue(attempt.id, {
        onState: showSaveState,
        onSaved: onSaved,
        onRejected: onRejected,
        onSessionEnded: sessionEnded,
        onPaused: () => heartbeat(),
      });
    }
    state.queue.reconcile(state.saved, attempt.last_seq);
    const open = openSection();
    state.openPosition = open ? open.position : null;
    state.countdown.set(attempt.section_deadline || (open && open.deadline), attempt.deadline, data.paused);
    showPaused(Boolean(data.paused));
    R.setText("er-exam-title", (data.exam && data.exam.title) || "");
    R.setText("er-section-title", open ? t("section_label", { n: open.position, title: open.title }) : "");
    if (!open) timeOver(); // every section closed, the server is about to close the attempt
    if (previousOpen !== null && open && open.position !== previousOpen) {
      const message = t("section_moved_on", { n: open.position, title: open.title });
      R.announce(message);
      if (state.page === "exam") showSectionNotice(message);
      else R.toast(message);
      state.current = null;
    }
    return true;
  }

  async function load() {
    const result = await R.api("GET", "/attempt");
    if (result.status === 401) { sessionEnded(); return false; }
    if (!result.ok || !result.body || !result.body.attempt) {
      R.toast(R.errorText(result));
      return false;
    }
    return apply(result.body);
  }

  /** The first load: a network that is down when the page opens is waited for (1, 2, 4 ... 15 s). */
  async function firstLoad() {
    for (let failures = 0; !state.ended; failures += 1) {
      if (await load()) return true;
      if (state.ended) return false;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.min(15, 2 ** failures) * 1000);
        window.addEventListener("online", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
    }
    return false;
  }

  /** Reload the attempt from the server (one at a time), then redraw. */
  function resync() {
    if (!state.resyncing) {
      state.resyncing = load().then((ok) => {
        state.resyncing = null;
        if (ok) render();
        return ok;
      });
    }
    return state.resyncing;
  }

  function finished(attemptId) {
    state.ended = true;
    R.SaveQueue.discard(attemptId);
    R.go("result", { replace: true });
  }

  function sessionEnded() {
    state.ended = true;
    R.session.end();
    R.notice(t("session_ended"), { signIn: true });
  }

  /* --------------------------------------------------------------- saving */

  function showSaveState(saveState, count) {
    const box = document.getElementById("er-save");
    if (!box) return;
    box.dataset.state = saveState;
    let text = t(saveState);
    if (saveState !== "saved" && count) text += " · " + t("pending_count", { n: count });
    R.setText("er-save-text", text);
    if (state.page === "exam" && state.current) showAnswerState();
    if (state.page === "review" && state.data) renderReview();
  }

  function onSaved(questionId, entry, body) {
    const saved = state.saved[questionId];
    if (!saved || saved.seq <= entry.seq) {
      state.saved[questionId] = { choices: entry.choices, flagged: entry.flagged, seq: body.seq || entry.seq };
    }
    state.savedAt[questionId] = true;
    refreshQuestionMarks(questionId);
  }

  function onRejected(questionId, entry, result) {
    if (result.code === "section_closed" || result.code === "deadline_passed") R.toast(R.errorText(result));
    resync();
  }

  function change(question, choices, flagged) {
    if (!answerable(question)) return;
    const ordered = question.options.map((option) => option.id).filter((id) => choices.includes(id));
    state.queue.put(String(question.id), ordered, flagged);
    refreshQuestionMarks(String(question.id));
  }

  function choose(question, optionId) {
    const answer = answerOf(String(question.id));
    let choices;
    if (question.type === "multiple") {
      choices = answer.choices.includes(optionId)
        ? answer.choices.filter((id) => id !== optionId) : answer.choices.concat([optionId]);
    } else {
      if (answer.choices.length === 1 && answer.choices[0] === optionId) return;
      choices = [optionId];
    }
    change(question, choices, answer.flagged);
  }

  function toggleFlag(question) {
    const answer = answerOf(String(question.id));
    change(question, answer.choices, !answer.flagged);
  }

  /* ------------------------------------------------------- clock and beat */

  async function heartbeat() {
    if (state.ended || !state.attempt) return;
    const answered = state.questions.filter((question) => isAnswered(String(question.id))).length;
    const result = await R.api("POST", "/attempt/heartbeat", { answered });
    if (result.network || result.status >= 500) { state.queue.connection(false); return; }
    state.queue.connection(true);
    if (result.status === 401) { sessionEnded(); return; }
    if (!result.ok || !result.body) return;
    const beat = result.body;
    if (beat.status !== "in_progress" || beat.section_position !== state.attempt.section_position) {
      await resync();
      return;
    }
    const paused = Boolean(beat.paused);
    if (paused || paused !== state.paused || beat.deadline !== state.attempt.deadline ||
        beat.section_deadline !== state.attempt.section_deadline) {
      state.attempt.deadline = beat.deadline; // an extension from the proctor, or a pause
      state.attempt.section_deadline = beat.section_deadline;
      state.countdown.set(beat.section_deadline, beat.deadline, paused);
    }
    showPaused(paused);
  }

  /** The proctor paused (or resumed) the room: a notice over the page, the clock standing still. */
  function showPaused(paused) {
    const dialog = document.getElementById("er-paused");
    const was = state.paused;
    state.paused = paused;
    if (paused) {
      const left = state.countdown.left();
      R.setText("er-paused-left", left === null ? "" : t("paused_left", { time: R.formatDuration(left) }));
      if (dialog && !dialog.open) {
        if (!dialog.dataset.bound) {
          dialog.addEventListener("cancel", (event) => event.preventDefault()); // Escape does not hide it
          dialog.dataset.bound = "1";
        }
        if (R.dialogOpen()) document.querySelectorAll("dialog[open]").forEach((open) => open.close());
        dialog.showModal();
      }
      return;
    }
    if (dialog && dialog.open) dialog.close();
    if (was) {
      R.toast(t("resumed"));
      R.announce(t("resumed"));
      if (state.queue) state.queue.retryNow(); // the answers kept during the pause
    }
  }

  function onLevel(level) {
    const message = level === "danger" ? t("one_minute") : t("five_minutes");
    R.toast(message);
    R.announce(message);
  }

  /** The open section's time is up: send what we hold, then ask the server what comes next. */
  async function onExpire() {
    if (state.ended) return;
    const lastSection = state.attempt && Date.parse(state.attempt.section_deadline) >= Date.parse(state.attempt.deadline);
    R.notice(lastSection ? t("exam_over") : t("section_over"));
    await Promise.race([state.queue.flush(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    for (let tries = 0; tries < 120 && !state.ended; tries += 1) {
      // The heartbeat makes the server settle its clock: the next section opens, or after the
      // last one the attempt is submitted; either way the page reloads the attempt.
      await heartbeat();
      if (openSection() && state.countdown.left() > 0) {
        R.notice(null); // the next section runs (or the proctor extended the time)
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000 + tries * 500, 5000)));
    }
  }

  function timeOver() {
    R.notice(t("exam_over"));
    setTimeout(() => { if (!state.ended) resync(); }, 3000);
  }

  /* ------------------------------------------------------------ the exam */

  const els = {};

  function setupExamPage() {
    ["er-exam", "er-loading", "er-question", "er-side", "er-q-number", "er-flag", "er-flag-text", "er-q-readonly",
      "er-q-text", "er-q-image", "er-q-hint", "er-options", "er-option-list", "er-q-saved", "er-prev", "er-next",
      "er-navigator", "er-end-section", "er-section-notice"].forEach((id) => {
      els[id.replace(/^er-/, "").replace(/-(\w)/g, (m, c) => c.toUpperCase())] = document.getElementById(id);
    });
    els.prev.addEventListener("click", () => move(-1));
    els.next.addEventListener("click", () => move(1));
    els.flag.addEventListener("click", () => { const q = currentQuestion(); if (q) toggleFlag(q); });
    els.endSection.addEventListener("click", endSection);
    els.optionList.addEventListener("change", (event) => {
      const input = event.target;
      const question = currentQuestion();
      if (!question || !input.matches("input[name=er-choice]")) return;
      const answer = answerOf(String(question.id));
      const choices = question.type === "multiple"
        ? Array.from(els.optionList.querySelectorAll("input[name=er-choice]:checked"), (box) => box.value)
        : [input.value];
      change(question, choices, answer.flagged);
      syncOptions();
    });
    document.getElementById("er-clear").addEventListener("click", () => {
      const question = currentQuestion();
      if (question) change(question, [], answerOf(String(question.id)).flagged);
      syncOptions();
    });
    els.navigator.addEventListener("click", (event) => {
      const cell = event.target.closest("button[data-question]");
      if (cell) show(cell.dataset.question, { focus: false });
    });
    document.addEventListener("keydown", onKey);
    window.addEventListener("hashchange", () => {
      const wanted = questionFromHash();
      if (wanted && wanted !== state.current) show(wanted);
    });
  }

  function currentQuestion() { return state.current ? state.byId.get(state.current) : null; }

  function questionFromHash() {
    const match = window.location.hash.match(/^#q=(.+)$/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  /** The questions Previous/Next walk through: the open section's (or, with none open, all). */
  function walkList() {
    const open = openSection();
    return open ? questionsOf(open) : state.questions;
  }

  function render() {
    if (state.page === "review") { renderReview(); return; }
    if (!state.data) return;
    const list = walkList();
    let wanted = state.current;
    const hashed = questionFromHash();
    if (!wanted && hashed && state.byId.has(hashed)) wanted = hashed;
    const wantedQuestion = wanted ? state.byId.get(wanted) : null;
    if (!wantedQuestion || (openSection() && !list.includes(wantedQuestion))) {
      wanted = list.length ? String(list[0].id) : null;
    }
    els.loading.hidden = true;
    els.question.hidden = !wanted;
    els.side.hidden = false;
    els.exam.setAttribute("aria-busy", "false");
    R.showCandidate();
    const open = openSection();
    const isLast = !open || open.position === Math.max(...state.sections.map((section) => section.position));
    els.endSection.hidden = isLast;
    renderNavigator();
    if (wanted) show(wanted, { focus: false, force: true });
  }

  function show(questionId, options) {
    const question = state.byId.get(String(questionId));
    if (!question) return;
    const changed = state.current !== String(question.id);
    const hadFocusInQuestion = els.question.contains(document.activeElement) &&
      !els.question.querySelector(".er-q-nav").contains(document.activeElement);
    state.current = String(question.id);
    if (changed || (options && options.force)) renderQuestion(question);
    try { history.replaceState(null, "", "#q=" + encodeURIComponent(state.current)); } catch (error) { /* ignore */ }
    renderNavigator();
    if (changed && (options ? options.focus !== false : true) && hadFocusInQuestion) {
      document.getElementById("er-q-number").focus({ preventScroll: true });
    }
    window.scrollTo({ top: 0 });
  }

  function move(step) {
    const list = walkList();
    const index = list.findIndex((question) => String(question.id) === state.current);
    const target = list[index + step];
    if (target) show(String(target.id));
  }

  function renderQuestion(question) {
    const section = sectionOf(question);
    const list = section ? questionsOf(section) : state.questions;
    const index = list.indexOf(question) + 1;
    els.qNumber.textContent = t("question_of", { n: index, total: list.length });
    els.qNumber.setAttribute("tabindex", "-1");
    els.qText.textContent = question.text;
    if (question.image_url) {
      els.qImage.src = question.image_url;
      els.qImage.alt = t("image_alt");
      els.qImage.hidden = false;
    } else {
      els.qImage.removeAttribute("src");
      els.qImage.hidden = true;
    }
    const multiple = question.type === "multiple";
    els.qHint.textContent = multiple ? t("choose_all") : t("choose_one");
    els.qHint.classList.toggle("is-multiple", multiple);
    const editable = answerable(question);
    els.qReadonly.textContent = editable ? "" : t("read_only");
    els.qReadonly.hidden = editable;
    els.options.disabled = !editable;
    els.flag.disabled = !editable;

    const rows = question.options.map((option, position) => {
      const id = "er-option-" + position;
      const label = document.createElement("label");
      label.className = "er-option";
      label.htmlFor = id;
      const input = document.createElement("input");
      input.type = multiple ? "checkbox" : "radio";
      input.name = "er-choice";
      input.id = id;
      input.value = option.id;
      input.setAttribute("aria-keyshortcuts", `${R.LETTERS[position]} ${position + 1}`);
      const letter = document.createElement("span");
      letter.className = "er-option-letter";
      letter.textContent = R.LETTERS[position];
      const text = document.createElement("span");
      text.className = "er-option-text";
      text.textContent = option.text;
      label.append(input, letter, text);
      return label;
    });
    els.optionList.replaceChildren(...rows);
    const list2 = walkList();
    const at = list2.indexOf(question);
    els.prev.disabled = at <= 0;
    els.next.disabled = at < 0 || at >= list2.length - 1;
    const hasOptionF = question.options.length >= 6;
    els.flag.setAttribute("aria-keyshortcuts", hasOptionF ? "Shift+F" : "F");
    const keys = document.getElementById("er-keys");
    if (keys) keys.textContent = hasOptionF ? t("keys_help_shift") : t("keys_help");
    syncOptions();
    R.setText("er-section-title", section ? t("section_label", { n: section.position, title: section.title }) : "");
  }

  /** Check the inputs, flag and saved line against the current answer, without rebuilding. */
  function syncOptions() {
    const question = currentQuestion();
    if (!question) return;
    const answer = answerOf(state.current);
    els.optionList.querySelectorAll("input[name=er-choice]").forEach((input) => {
      input.checked = answer.choices.includes(input.value);
      input.closest(".er-option").classList.toggle("is-chosen", input.checked);
    });
    document.getElementById("er-clear").hidden =
      question.type === "multiple" || !answerable(question) || answer.choices.length === 0;
    els.flag.setAttribute("aria-pressed", answer.flagged ? "true" : "false");
    els.flag.classList.toggle("is-on", answer.flagged);
    els.flagText.textContent = answer.flagged ? t("flagged") : t("flag");
    showAnswerState();
  }

  function showAnswerState() {
    if (!els.qSaved || !state.current) return;
    const answer = answerOf(state.current);
    const saveState = state.queue ? state.queue.state() : "saved";
    let key;
    let mark;
    if (answer.pending) {
      key = saveState === "offline" ? "answer_waiting" : "answer_saving";
      mark = saveState === "offline" ? "waiting" : "saving";
    } else if (answer.choices.length || answer.flagged || state.savedAt[state.current]) {
      key = "answer_saved";
      mark = "saved";
    } else {
      key = "answer_none";
      mark = "none";
    }
    els.qSaved.dataset.state = mark;
    els.qSaved.textContent = t(key);
  }

  function refreshQuestionMarks(questionId) {
    if (state.page === "review") { renderReview(); return; }
    if (questionId === state.current) syncOptions();
    renderNavigator();
  }

  function cellLabel(question, number) {
    const answer = answerOf(String(question.id));
    const parts = [answer.choices.length ? t("state_answered") : t("state_unanswered")];
    if (answer.flagged) parts.push(t("state_flagged"));
    if (String(question.id) === state.current) parts.push(t("state_current"));
    return t("nav_item", { n: number, state: parts.join(", ") });
  }

  function renderNavigator() {
    if (!els.navigator) return;
    const blocks = state.sections.map((section) => {
      const block = document.createElement("section");
      block.className = "er-nav-section is-" + section.state;
      const heading = document.createElement("h2");
      heading.textContent = t("section_label", { n: section.position, title: section.title });
      const summary = document.createElement("p");
      summary.className = "er-nav-summary";
      const list = questionsOf(section);
      const answered = list.filter((question) => isAnswered(String(question.id))).length;
      const count = list.length || section.question_count;
      if (section.state === "open") summary.textContent = t("section_open", { answered, count });
      else if (section.state === "closed") summary.textContent = t("section_closed", { answered, count });
      else summary.textContent = t("section_upcoming", { count: section.question_count, minutes: section.minutes });
      block.append(heading, summary);
      if (section.state === "open") {
        const grid = document.createElement("div");
        grid.className = "er-grid";
        grid.setAttribute("role", "group");
        grid.setAttribute("aria-label", heading.textContent);
        list.forEach((question, index) => {
          const answer = answerOf(String(question.id));
          const cell = document.createElement("button");
          cell.type = "button";
          cell.className = "er-cell";
          cell.dataset.question = String(question.id);
          cell.textContent = String(index + 1);
          cell.classList.toggle("is-answered", answer.choices.length > 0);
          cell.classList.toggle("is-flagged", answer.flagged);
          cell.classList.toggle("is-pending", answer.pending);
          const current = String(question.id) === state.current;
          cell.classList.toggle("is-current", current);
          if (current) cell.setAttribute("aria-current", "true");
          cell.setAttribute("aria-label", cellLabel(question, index + 1));
          grid.append(cell);
        });
        block.append(grid);
      }
      return block;
    });
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.question : null;
    els.navigator.replaceChildren(...blocks);
    if (focused) {
      const again = els.navigator.querySelector(`button[data-question="${CSS.escape(focused)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
    const current = els.navigator.querySelector(".er-cell.is-current");
    if (current) keepInView(current, els.navigator);
  }

  /** Scroll the navigator (only it, not the page) so that the cell is visible. */
  function keepInView(element, container) {
    const box = container.getBoundingClientRect();
    const cell = element.getBoundingClientRect();
    if (cell.top < box.top) container.scrollTop -= box.top - cell.top + 8;
    else if (cell.bottom > box.bottom) container.scrollTop += cell.bottom - box.bottom + 8;
  }

  function showSectionNotice(message) {
    els.sectionNotice.textContent = message;
    els.sectionNotice.hidden = false;
    setTimeout(() => { els.sectionNotice.hidden = true; }, 15000);
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || R.dialogOpen() || state.ended) return;
    const target = event.target;
    if (target.isContentEditable || target.tagName === "TEXTAREA" ||
        (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)) || target.tagName === "SELECT") {
      return;
    }
    const question = currentQuestion();
    if (!question) return;
    const key = event.key;
    if (key === "ArrowLeft" || key === "ArrowRight") {
      event.preventDefault(); // not the radio group's own arrow handling: that would change the answer
      move(key === "ArrowLeft" ? -1 : 1);
      return;
    }
    if ((key === "ArrowUp" || key === "ArrowDown") && target.name === "er-choice") {
      event.preventDefault(); // move between options without choosing
      const inputs = Array.from(els.optionList.querySelectorAll("input[name=er-choice]"));
      const next = inputs[inputs.indexOf(target) + (key === "ArrowUp" ? -1 : 1)];
      if (next) next.focus();
      return;
    }
    const hasOptionF = question.options.length >= 6;
    if ((key === "f" || key === "F") && (event.shiftKey || !hasOptionF)) {
      event.preventDefault();
      if (answerable(question)) toggleFlag(question);
      return;
    }
    let index = -1;
    if (/^[1-9]$/.test(key)) index = Number(key) - 1;
    else if (/^[a-zA-Z]$/.test(key) && !event.shiftKey) index = R.LETTERS.indexOf(key.toUpperCase());
    if (index >= 0 && index < Math.min(6, question.options.length)) {
      event.preventDefault();
      if (!answerable(question)) return;
      choose(question, question.options[index].id);
      syncOptions();
    }
  }

  async function endSection() {
    const open = openSection();
    if (!open) return;
    const unanswered = questionsOf(open).filter((question) => !isAnswered(String(question.id))).length;
    const ok = await R.confirmDialog(t("end_section_title"), [
      t("end_section_body", { n: open.position, title: open.title }),
      unanswered ? t("unanswered_warning", { n: unanswered }) : "",
    ], t("end_section_ok"));
    if (!ok) return;
    els.endSection.disabled = true;
    try {
      if (!(await state.queue.flush())) { R.toast(t("wait_for_saves")); return; }
      const result = await R.api("POST", "/attempt/section/next");
      if (result.status === 401) { sessionEnded(); return; }
      if (!result.ok || !result.body) { R.toast(R.errorText(result)); resync(); return; }
      if (apply(result.body)) {
        state.current = null;
        render();
      }
    } finally {
      els.endSection.disabled = false;
    }
  }

  /* ------------------------------------------------------------- review */

  function renderReview() {
    if (!state.data) return;
    const container = document.getElementById("er-review-sections");
    let answeredTotal = 0;
    let flaggedTotal = 0;
    let total = 0;
    const blocks = state.sections.map((section) => {
      const block = document.createElement("section");
      block.className = "er-review-section is-" + section.state;
      const heading = document.createElement("h2");
      heading.textContent = t("section_label", { n: section.position, title: section.title });
      const list = questionsOf(section);
      const answered = list.filter((question) => isAnswered(String(question.id))).length;
      const summary = document.createElement("p");
      summary.className = "er-nav-summary";
      if (section.state === "open") summary.textContent = t("section_open", { answered, count: list.length });
      else if (section.state === "closed") summary.textContent = t("section_closed", { answered, count: list.length });
      else summary.textContent = t("section_upcoming", { count: section.question_count, minutes: section.minutes });
      block.append(heading, summary);
      if (list.length) {
        const items = document.createElement("ol");
        items.className = "er-review-list";
        list.forEach((question, index) => {
          const answer = answerOf(String(question.id));
          total += 1;
          if (answer.choices.length) answeredTotal += 1;
          if (answer.flagged) flaggedTotal += 1;
          const item = document.createElement("li");
          item.className = "er-review-item";
          item.classList.toggle("is-answered", answer.choices.length > 0);
          item.classList.toggle("is-flagged", answer.flagged);
          const inner = document.createElement(section.state === "open" ? "a" : "div");
          inner.className = "er-review-link";
          if (section.state === "open") {
            inner.href = R.config.pages.exam + "#q=" + encodeURIComponent(String(question.id));
            inner.setAttribute("aria-label", t("review_go", { n: index + 1 }) + ": " + cellLabel(question, index + 1));
          }
          const number = document.createElement("span");
          number.className = "er-review-number";
          number.textContent = t("question_short", { n: index + 1 });
          const letters = document.createElement("span");
          letters.className = "er-review-letters";
          letters.textContent = answer.choices.length ? lettersOf(question, answer.choices) : "—";
          letters.title = answer.choices.length
            ? t("review_answered", { letters: letters.textContent }) : t("review_unanswered");
          inner.append(number, letters);
          if (!answer.choices.length) {
            const status = document.createElement("span");
            status.className = "er-review-status";
            status.textContent = t("review_unanswered");
            inner.append(status);
          }
          if (answer.flagged) {
            const flag = document.createElement("span");
            flag.className = "er-review-flag";
            flag.textContent = t("review_flagged");
            inner.append(flag);
          }
          if (answer.pending) {
            const pending = document.createElement("span");
            pending.className = "er-review-pending";
            pending.textContent = t("review_pending");
            inner.append(pending);
          }
          item.append(inner);
          items.append(item);
        });
        block.append(items);
      }
      return block;
    });
    container.replaceChildren(...blocks);
    R.setText("er-review-summary", t("review_summary", { answered: answeredTotal, total, flagged: flaggedTotal }));
    document.getElementById("er-review-page").setAttribute("aria-busy", "false");
    document.getElementById("er-submit").disabled = state.ended;
    R.showCandidate();
  }

  function setupReviewPage() {
    document.getElementById("er-submit").addEventListener("click", submit);
  }

  async function submit() {
    const button = document.getElementById("er-submit");
    const unanswered = state.questions.filter((question) => !isAnswered(String(question.id))).length;
    const upcoming = state.sections.filter((section) => section.state === "upcoming").map((section) => section.title);
    const ok = await R.confirmDialog(t("submit_title"), [
      t("confirm_submit"),
      unanswered ? t("unanswered_warning", { n: unanswered }) : "",
      upcoming.length ? t("upcoming_warning", { titles: upcoming.join(", ") }) : "",
    ], t("submit_ok"));
    if (!ok) return;
    button.disabled = true;
    R.showError("er-error", "");
    const label = button.textContent;
    button.textContent = t("submitting");
    const restore = () => { button.disabled = false; button.textContent = label; };
    if (!(await state.queue.flush())) {
      restore();
      R.showError("er-error", t("wait_for_saves"));
      return;
    }
    const result = await R.api("POST", "/attempt/submit", { confirm: true });
    if (result.ok || result.code === "submitted") { finished(state.attempt.id); return; }
    if (result.status === 401) { sessionEnded(); return; }
    restore();
    R.showError("er-error", R.errorText(result));
  }

  /* --------------------------------------------------------------- start */

  async function main() {
    if (!R.requireSession()) return;
    R.showCandidate();
    state.countdown = new R.Countdown({ onLevel, onExpire });
    if (state.page === "exam") setupExamPage();
    else setupReviewPage();
    if (await firstLoad()) render();
    let lastBeat = Date.now();
    setInterval(() => { // every HEARTBEAT_MS, more often while the room is paused
      if (Date.now() - lastBeat < (state.paused ? PAUSED_HEARTBEAT_MS : HEARTBEAT_MS)) return;
      lastBeat = Date.now();
      heartbeat();
    }, 500);
    window.addEventListener("online", heartbeat); // back on the network: the clock and state at once
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !state.ended) heartbeat();
    });
  }

  main();
})();
