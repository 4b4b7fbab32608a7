/* The exam room's pages around the exam: sign-in, instructions, result and confirmation slip. */
(function () {
  "use strict";

  const R = window.ExamRoom;
  const { t } = R;

  /** The page an attempt in this status belongs on. */
  function pageFor(status) {
    if (status === "in_progress") return "exam";
    if (status === "submitted") return "result";
    return "instructions";
  }

  /** dd/mm/yyyy (also d/m/yyyy, dd-mm-yyyy, dd.mm.yyyy, ddmmyyyy or yyyy-mm-dd) → "yyyy-mm-dd", or null. */
  function parseDate(text) {
    const value = (text || "").trim();
    let day, month, year, match;
    if ((match = value.match(/^(\d{4})-(\d{1,2})-(\d{1,2})$/))) [, year, month, day] = match;
    else if ((match = value.match(/^(\d{1,2})\s*[/.\- ]\s*(\d{1,2})\s*[/.\- ]\s*(\d{4})$/))) [, day, month, year] = match;
    else if ((match = value.match(/^(\d{2})(\d{2})(\d{4})$/))) [, day, month, year] = match;
    else return null;
    const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
    if (date.getUTCFullYear() !== Number(year) || date.getUTCMonth() !== Number(month) - 1 ||
        date.getUTCDate() !== Number(day) || Number(year) < 1900) return null;
    return date.toISOString().slice(0, 10);
  }

  /* ---------------------------------------------------------------- sign-in */

  function signInPage() {
    if (R.session.token()) {
      // Already signed in in this tab (a reload, or Back): carry on where the attempt stands.
      R.api("GET", "/attempt").then((result) => {
        if (result.ok && result.body && result.body.attempt) R.go(pageFor(result.body.attempt.status), { replace: true });
        else if (result.status === 401) R.session.end();
      });
    }
    const form = document.getElementById("er-signin");
    const button = document.getElementById("er-signin-button");
    const fields = {
      registration_no: document.getElementById("registration_no"),
      date_of_birth: document.getElementById("date_of_birth"),
      access_code: document.getElementById("access_code"),
    };
    fields.registration_no.focus();

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      R.showError("er-signin-error", "");
      const registrationNo = fields.registration_no.value.trim();
      const accessCode = fields.access_code.value.replace(/\s+/g, "");
      if (!registrationNo || !fields.date_of_birth.value.trim() || !accessCode) {
        R.showError("er-signin-error", t("missing_fields"));
        (registrationNo ? (fields.date_of_birth.value.trim() ? fields.access_code : fields.date_of_birth)
          : fields.registration_no).focus();
        return;
      }
      const dateOfBirth = parseDate(fields.date_of_birth.value);
      if (!dateOfBirth) {
        R.showError("er-signin-error", t("bad_date"));
        fields.date_of_birth.setAttribute("aria-invalid", "true");
        fields.date_of_birth.focus();
        return;
      }
      fields.date_of_birth.removeAttribute("aria-invalid");
      button.disabled = true;
      const label = button.textContent;
      button.textContent = t("signing_in");
      const result = await R.api("POST", "/login",
        { registration_no: registrationNo, date_of_birth: dateOfBirth, access_code: accessCode });
      if (result.ok && result.body && result.body.token) {
        R.session.begin(result.body);
        Object.values(fields).forEach((field) => { field.value = ""; }); // nothing left behind Back
        const status = result.body.attempt ? result.body.attempt.status : "not_started";
        R.go(pageFor(status), { replace: true });
        return;
      }
      button.disabled = false;
      button.textContent = label;
      R.showError("er-signin-error", R.errorText(result));
      if (result.code === "bad_access_code") {
        fields.access_code.value = "";
        fields.access_code.focus();
      } else if (result.code === "bad_credentials") {
        fields.registration_no.focus();
      }
    });
  }

  /* ----------------------------------------------------------- instructions */

  async function logout(button, attemptId) {
    if (button) button.disabled = true;
    await R.api("POST", "/logout"); // whatever the answer: this tab forgets the session
    R.leave(attemptId);
  }

  async function instructionsPage() {
    if (!R.requireSession()) return;
    R.showCandidate();
    const profile = R.session.profile();
    const candidate = profile.candidate || {};
    const sitting = profile.sitting || {};
    R.setText("er-fact-name", candidate.full_name);
    R.setText("er-fact-number", candidate.registration_no);
    R.setText("er-fact-sitting", [sitting.code, R.formatDateTime(sitting.starts_at, false)].filter(Boolean).join(" · "));
    R.setText("er-fact-room", [sitting.room, candidate.seat].filter((v) => v !== undefined && v !== null && v !== "")
      .join(" · "));

    const start = document.getElementById("er-start");
    const resume = document.getElementById("er-continue");
    let attemptId = null;
    document.getElementById("er-logout").addEventListener("click", (event) => logout(event.currentTarget, attemptId));

    const result = await R.api("GET", "/attempt");
    if (result.status === 401) { R.leave(); return; }
    if (!result.ok || !result.body) {
      R.showError("er-error", R.errorText(result));
      return;
    }
    const data = result.body;
    attemptId = data.attempt.id;
    if (data.attempt.status === "submitted") { R.go("result", { replace: true }); return; }
    const exam = data.exam || {};
    R.setText("er-exam-code", exam.code);
    R.setText("er-exam-title", exam.title);
    const body = document.querySelector("#er-sections tbody");
    body.replaceChildren(...(data.sections || []).map((section) => {
      const row = document.createElement("tr");
      [section.position, section.title, section.question_count, t("minutes", { n: section.minutes })]
        .forEach((value, index) => {
          const cell = document.createElement(index === 1 ? "th" : "td");
          if (index === 1) cell.scope = "row";
          if (index >= 2) cell.className = "er-num";
          cell.textContent = value;
          row.append(cell);
        });
      return row;
    }));
    if (exam.instructions) {
      const box = document.getElementById("er-exam-instructions");
      box.textContent = exam.instructions;
      box.hidden = false;
    }
    document.getElementById("er-instructions").setAttribute("aria-busy", "false");

    if (data.attempt.status === "in_progress") {
      start.hidden = true;
      resume.hidden = false;
      resume.addEventListener("click", () => R.go("exam"));
      resume.focus({ preventScroll: true });
      return;
    }
    start.disabled = false;
    start.focus({ preventScroll: true });
    start.addEventListener("click", async () => {
      start.disabled = true;
      R.showError("er-error", "");
      // The exam page loads the attempt itself: the paper is not sent twice.
      const started = await R.api("POST", "/attempt/start", undefined, { headers: { Prefer: "return=minimal" } });
      if (started.ok) { R.go("exam"); return; }
      if (started.status === 401) { R.leave(attemptId); return; }
      start.disabled = false;
      R.showError("er-error", R.errorText(started));
    });
  }

  /* ----------------------------------------------------------------- result */

  async function resultPage() {
    if (!R.requireSession()) return;
    R.showCandidate();
    let attemptId = null;
    document.getElementById("er-logout").addEventListener("click", (event) => logout(event.currentTarget, attemptId));
    const [state, outcome] = await Promise.all([R.api("GET", "/attempt"), R.api("GET", "/attempt/result")]);
    if (state.status === 401 || outcome.status === 401) { R.leave(); return; }
    if (state.ok && state.body && state.body.attempt) {
      attemptId = state.body.attempt.id;
      if (state.body.attempt.status !== "submitted") { R.go(state.body.attempt.status === "in_progress" ? "exam" : "instructions", { replace: true }); return; }
      R.SaveQueue.discard(attemptId); // submitted: nothing of this attempt waits on this machine
    }
    if (!outcome.ok || !outcome.body) {
      R.showError("er-error", R.errorText(outcome));
      R.setText("er-result-when", "");
      return;
    }
    const result = outcome.body;
    const profile = R.session.profile();
    const candidate = profile.candidate || {};
    const sitting = profile.sitting || {};
    const exam = (state.body && state.body.exam) || profile.exam || {};
    const submittedAt = result.submitted_at || (state.body && state.body.attempt.submitted_at);

    R.setText("er-result-when", t("submitted_at", { time: R.formatDateTime(submittedAt) }));
    R.setText("er-slip-exam-code", exam.code);
    R.setText("er-slip-exam-title", exam.title);
    R.setText("er-slip-name", candidate.full_name);
    R.setText("er-slip-number", candidate.registration_no);
    R.setText("er-slip-sitting", [sitting.code, R.formatDateTime(sitting.starts_at, false)].filter(Boolean).join(" · "));
    R.setText("er-slip-room", [sitting.room, candidate.seat].filter((v) => v !== undefined && v !== null && v !== "")
      .join(" · "));
    R.setText("er-slip-submitted", R.formatDateTime(submittedAt));
    R.setText("er-slip-printed", t("printed_at", { time: R.formatDateTime(new Date(R.clock.now()).toISOString()) }));

    const sections = result.sections || [];
    if (result.show_score && sections.length) {
      const body = document.querySelector("#er-scores tbody");
      body.replaceChildren(...sections.map((section) => {
        const row = document.createElement("tr");
        const title = document.createElement("th");
        title.scope = "row";
        title.textContent = section.title;
        const correct = document.createElement("td");
        correct.className = "er-num";
        correct.textContent = t("correct_of", { correct: section.correct, questions: section.questions });
        const score = document.createElement("td");
        score.className = "er-num";
        score.textContent = t("score_of", { score: R.formatNumber(section.score), max: R.formatNumber(section.max_score) });
        const verdict = document.createElement("td");
        verdict.append(verdictBadge(section.passed));
        row.append(title, correct, score, verdict);
        return row;
      }));
      const overall = document.getElementById("er-overall");
      overall.replaceChildren(verdictBadge(result.passed));
      document.getElementById("er-scores").hidden = false;
    } else {
      document.getElementById("er-no-score").hidden = false;
    }
    showMerit(result.merit);
    document.getElementById("er-slip").hidden = false;
    document.getElementById("er-result").setAttribute("aria-busy", "false");
    const print = document.getElementById("er-print");
    print.disabled = false;
    print.addEventListener("click", () => window.print());
  }

  /** After the board publishes the merit list: the candidate's line, and their response sheet to download. */
  function showMerit(merit) {
    if (!merit || !merit.published) return;
    R.setText("er-merit-post", merit.post);
    R.setText("er-merit-total", merit.total === null || merit.total === undefined ? "—" : R.formatNumber(merit.total));
    R.setText("er-merit-rank", merit.rank === null || merit.rank === undefined ? "—" : String(merit.rank));
    R.setText("er-merit-status", merit.status_label);
    document.getElementById("er-merit").hidden = false;
    const sheet = document.getElementById("er-sheet");
    sheet.hidden = false;
    sheet.addEventListener("click", () => downloadSheet(sheet));
  }

  /** The PDF needs the bearer token, which a plain link cannot send: fetch it, then save the file. */
  async function downloadSheet(button) {
    button.disabled = true;
    try {
      const response = await fetch(R.config.api + "/attempt/response-sheet.pdf", {
        headers: { Authorization: "Bearer " + R.session.token() }, cache: "no-store", credentials: "omit" });
      if (!response.ok) {
        let message = null;
        try { const data = await response.json(); message = data && data.error && data.error.message; } catch (e) { /* not JSON */ }
        R.toast(message || t("sheet_failed"));
        return;
      }
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      link.href = url;
      link.download = match ? match[1] : "phieu-bai-lam.pdf";
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      R.toast(t("network"));
    } finally {
      button.disabled = false;
    }
  }

  function verdictBadge(passed) {
    const badge = document.createElement("span");
    if (passed === undefined || passed === null) return badge;
    badge.className = "er-verdict " + (passed ? "is-passed" : "is-failed");
    badge.textContent = passed ? t("passed") : t("failed");
    return badge;
  }

  const pages = { "sign-in": signInPage, instructions: instructionsPage, result: resultPage };
  const run = pages[document.body.dataset.page];
  if (run) run();
})();
