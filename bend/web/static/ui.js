// Bend web UI: live updates over server-sent events, and small conveniences. Pages work without it.

const FINISHED = new Set(["completed", "failed", "cancelled"]);

function setStatus(el, status) {
  if (!el || !status) return;
  el.dataset.status = status;
  el.textContent = status.replace(/_/g, " ");
}

function formatDuration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000), s = Math.floor((ms % 60000) / 1000);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// A finished run's note under its id, as the list draws it: a cancellation's reason in the
// cancelled colour, a failure's error type in red.
function showRunNote(row, data) {
  const cell = row.querySelector("td");
  if (!cell || cell.querySelector(".run-note")) return;
  let note = null;
  if (data.status === "cancelled" && (data.cancel_reason || data.cancel_message)) {
    const why = data.cancel_reason || data.cancel_message;
    note = document.createElement("span");
    note.className = "run-note note-cancelled small";
    note.title = why;
    note.textContent = `Cancelled: ${why.length > 80 ? `${why.slice(0, 77)}...` : why}`;
  } else if (data.status === "failed" && data.error_type) {
    note = document.createElement("span");
    note.className = "run-note note-failed text-error small";
    note.textContent = data.error_type + (data.failed_step_id ? ` in ${data.failed_step_id}` : "");
  }
  if (note) cell.append(document.createElement("br"), note);
}

function liveRunsList() {
  const rows = [...document.querySelectorAll("tr.run-row")];
  const table = document.getElementById("run-table");
  const watchNew = table && table.dataset.newest !== undefined;
  const open = rows.filter((r) => !FINISHED.has(r.dataset.status)).map((r) => r.dataset.runId);
  if ((!open.length && !watchNew) || !window.EventSource) return;
  const params = open.map((id) => `run_id=${encodeURIComponent(id)}`);
  if (watchNew) {
    params.push(`newest=${encodeURIComponent(table.dataset.newest)}`);
    if (table.dataset.filters) params.push(table.dataset.filters);
  }
  const source = new EventSource(`/ui/runs/stream?${params.join("&")}`);
  source.addEventListener("new", (e) => {
    const count = JSON.parse(e.data).count;
    const banner = document.getElementById("new-runs");
    if (!banner) return;
    banner.hidden = count === 0;
    banner.querySelector(".count").textContent =
      `${count >= 100 ? "100+" : count} new run${count === 1 ? "" : "s"}`;
  });
  const indicator = document.getElementById("live-indicator");
  source.addEventListener("open", () => { if (indicator) indicator.hidden = false; });
  source.addEventListener("status", (e) => {
    const data = JSON.parse(e.data);
    const row = document.querySelector(`tr.run-row[data-run-id="${CSS.escape(data.run_id)}"]`);
    if (!row) return;
    row.dataset.status = data.status;
    setStatus(row.querySelector(".status-badge"), data.status);
    showRunNote(row, data);
    const cell = row.querySelector(".run-duration");
    if (cell && data.duration_ms !== null) cell.textContent = formatDuration(data.duration_ms);
  });
  source.addEventListener("end", () => { source.close(); if (indicator) indicator.hidden = true; });
  source.addEventListener("error", () => { if (indicator) indicator.hidden = true; });
}

function liveRun() {
  const status = document.getElementById("run-status");
  const head = document.querySelector(".run-head");
  if (!status || !head || FINISHED.has(status.dataset.status) || !window.EventSource) return;
  const runId = head.dataset.runId;
  const source = new EventSource(
    `/ui/runs/${encodeURIComponent(runId)}/stream?after_seq=${head.dataset.lastSeq || 0}` +
    `&status=${encodeURIComponent(status.dataset.status)}`);
  source.addEventListener("state", (e) => {
    const data = JSON.parse(e.data);
    setStatus(status, data.status);
    head.dataset.lastSeq = data.last_seq;
    for (const [stepId, st] of Object.entries(data.nodes || {})) {
      const node = document.querySelector(
        `#run-graph g.graph-node[data-step-id="${CSS.escape(stepId)}"]`);
      if (!node) continue;
      node.dataset.status = st;
      const label = node.querySelector(".node-status");
      if (label) label.textContent = st.replace(/_/g, " ");
    }
    const body = document.querySelector("#event-log tbody");
    if (body && data.events_html) body.insertAdjacentHTML("beforeend", data.events_html);
    const box = document.getElementById("timeline-box");
    if (box && data.timeline_html) replaceKeepingFocus(box, data.timeline_html);
    if (data.panels) updatePanels(data.panels, data.panel_order || []);
    watchTokens(runId);
    const waiting = document.getElementById("waiting-body");
    if (waiting && data.waiting_html) waiting.innerHTML = data.waiting_html;
    if (data.finished) {
      document.getElementById("action-cancel")?.remove();
      document.getElementById("waiting-on")?.classList.add("done");
    }
  });
  source.addEventListener("end", () => {
    source.close();
    refreshSections(["run-io", "run-usage"]);
  });
  watchTokens(runId);
}

// An agent step's model text as it streams (a side channel: not the run log), shown under the
// step as plain text (textContent: never parsed as HTML). Kept here so a re-rendered panel gets
// it back; each model call starts a new paragraph.
const streamed = new Map();  // step_id -> {source, calls: Map(call_index -> text)}

function showTokens(stepId) {
  const seen = streamed.get(stepId);
  const panel = document.querySelector(
    `#step-panels section.step-detail[data-step-id="${CSS.escape(stepId)}"]`);
  if (!seen || !panel) return;
  let box = panel.querySelector(":scope > pre.agent-tokens");
  if (!box) {
    box = document.createElement("pre");
    box.className = "agent-tokens";
    box.setAttribute("aria-live", "polite");
    box.setAttribute("aria-label", "The model's text as it streams");
    panel.querySelector(":scope > .step-head")?.after(box);
  }
  box.textContent = [...seen.calls.values()].join("\n\n");
}

function watchTokens(runId) {
  if (!window.EventSource) return;
  for (const panel of document.querySelectorAll(
      '#step-panels section.step-detail[data-node-type="agent"]')) {
    const stepId = panel.dataset.stepId;
    const seen = streamed.get(stepId);
    if (seen) { showTokens(stepId); }
    if (!["scheduled", "running", "retrying"].includes(panel.dataset.status) || seen?.source) {
      continue;
    }
    const entry = seen || {source: null, calls: new Map()};
    streamed.set(stepId, entry);
    entry.source = new EventSource(`/ui/runs/${encodeURIComponent(runId)}/tokens` +
                                   `?step_id=${encodeURIComponent(stepId)}`);
    entry.source.addEventListener("tokens", (e) => {
      const piece = JSON.parse(e.data);
      const key = `${piece.attempt}:${piece.call_index}`;
      entry.calls.set(key, (entry.calls.get(key) || "") + String(piece.text || ""));
      showTokens(stepId);
    });
    const stop = () => { entry.source?.close(); entry.source = null; };
    entry.source.addEventListener("end", stop);
    entry.source.addEventListener("timeout", stop);
  }
}

// What the reader opened ("show all" of a value, an LLM call's prompt) stays open, and the focus
// stays where it was, when a panel is swapped for a newer rendering of itself.
function swapKeepingState(old, fresh) {
  for (const details of old.querySelectorAll("details[data-key]")) {
    const twin = fresh.querySelector(`details[data-key="${CSS.escape(details.dataset.key)}"]`);
    if (twin) twin.open = details.open;
  }
  const focused = old.contains(document.activeElement) ? document.activeElement : null;
  const holder = focused?.closest("[data-key]");
  const path = [];  // child indexes from `old` down to the focused element
  for (let e = focused; e && e !== old; e = e.parentElement) {
    path.unshift([...e.parentElement.children].indexOf(e));
  }
  old.replaceWith(fresh);
  if (!focused) return;
  let twin = null;
  if (holder && old.contains(holder)) {
    const same = fresh.querySelector(`[data-key="${CSS.escape(holder.dataset.key)}"]`);
    twin = same && (focused === holder ? same : same.querySelector(focused.tagName));
  }
  if (!twin) {  // the same place in the new rendering, if it is the same kind of element
    twin = path.reduce((e, k) => e && e.children[k], fresh);
    if (twin && twin.tagName !== focused.tagName) twin = null;
  }
  twin?.focus({preventScroll: true});
}

// Step panels that changed since the last frame, swapped in place; new ones put in order.
function updatePanels(panels, order) {
  const list = document.getElementById("step-panels");
  if (!list) return;
  const panelOf = (id) => list.querySelector(
    `:scope > section.step-detail[data-step-id="${CSS.escape(id)}"]`);
  for (const [stepId, html] of panels) {
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const fresh = holder.content.firstElementChild;
    const old = panelOf(stepId);
    if (old) swapKeepingState(old, fresh);
    else list.append(fresh);
  }
  if (order.length) document.getElementById("no-steps-yet")?.remove();
  let previous = null;
  for (const stepId of order) {  // new panels went last; move them where the server has them
    const panel = panelOf(stepId);
    if (!panel) continue;
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (expected !== panel && !panel.contains(document.activeElement)) {
      if (previous) previous.after(panel); else list.prepend(panel);
    }
    previous = panel;
  }
}

// The timeline redrawn; a focused bar keeps the focus (found again by step and attempt).
function replaceKeepingFocus(box, html) {
  const on = document.activeElement;
  const bar = box.contains(on)
    ? on.closest("[data-step-id]") || on.querySelector(".timeline-bar[data-step-id]") : null;
  const key = bar ? [bar.dataset.stepId, bar.dataset.attempt] : null;
  box.innerHTML = html;
  if (!key) return;
  for (const again of box.querySelectorAll("[data-step-id]")) {
    if (again.dataset.stepId === key[0] && again.dataset.attempt === key[1]) {
      (again.closest("a") || again).focus({preventScroll: true});
      break;
    }
  }
}

// Swap sections for their current rendering (the run's output, usage and step details once
// it has finished) without reloading the page.
async function refreshSections(ids) {
  try {
    const response = await fetch(window.location.pathname, {credentials: "same-origin"});
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of ids) {
      const now = document.getElementById(id), next = fresh.getElementById(id);
      if (now && next) swapKeepingState(now, document.importNode(next, true));
    }
  } catch (err) {
    console.warn("could not refresh the run's sections", err);
  }
}

function filterWorkflows() {
  const box = document.getElementById("workflow-search");
  if (!box) return;
  box.addEventListener("input", () => {
    const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const row of document.querySelectorAll("tr.workflow-row")) {
      const text = row.textContent.toLowerCase();
      row.hidden = !words.every((w) => text.includes(w));
    }
  });
}

function selectAll() {
  const all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll('input[name="event_id"]')) box.checked = all.checked;
  });
}

// A confirmation (or the backfill form) is a page shown as a dialog: the focus starts inside it
// (on its least destructive control, or the field marked data-dialog-focus), and Escape leaves
// it by its cancel link, as closing a dialog would.
function dialogPage() {
  const dialog = document.querySelector("[data-dialog]");
  if (!dialog) return;
  const cancel = dialog.querySelector("[data-dialog-cancel]");
  const first = dialog.querySelector("[data-dialog-focus]") || cancel;
  if (first && !dialog.contains(document.activeElement)) first.focus();
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || e.defaultPrevented || !cancel) return;
    e.preventDefault();
    window.location.assign(cancel.href);
  });
}

// A form the server refused: the focus goes to its first field marked invalid, whose error is
// read with it (aria-describedby), so the keyboard starts where the fixing is.
function focusFirstProblem() {
  if (document.activeElement && document.activeElement !== document.body) return;
  const bad = document.querySelector('main [aria-invalid="true"]');
  if (!bad) return;
  bad.focus();
  try {  // typing goes on after what was kept, not before it
    if (typeof bad.value === "string") bad.setSelectionRange(bad.value.length, bad.value.length);
  } catch (err) { /* fields without a caret (dates, selects) */ }
}

liveRunsList();
liveRun();
filterWorkflows();
selectAll();
dialogPage();
focusFirstProblem();
