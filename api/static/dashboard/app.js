// The campaign dashboard: vanilla JavaScript over the engine's REST API (docs/dashboard.md).
// Every request carries the x-api-key the user signed in with; the key lives in
// sessionStorage only (gone when the tab closes). Pages poll the API every POLL_MS.

import { csvToContacts, parseCsv } from "./csv.js";

const KEY_STORE = "campaignEngine.apiKey";
const POLL_MS = 1500;
const PAGE_SIZE = 25;
const MAX_ROWS_PER_REQUEST = 1000; // the API's limit per upload or append request
const CHART_EXPORT_LIMIT = 5000; // above this many contacts the chart samples the counts instead
const CHART_REFRESH_MS = 4000;
const FINAL = new Set(["completed", "canceled", "failed"]);
const FINAL_CONTACT = new Set(["done", "removed", "canceled"]);
const OUTCOMES = ["completed", "no-answer", "busy", "failed", "voicemail", "canceled"];
const OUTCOME_COLORS = { completed: "#1c7c3a", "no-answer": "#a86400", busy: "#c2410c", failed: "#b3261e",
  voicemail: "#4a5bd4", canceled: "#6b7280" };
const CAMPAIGN_STATUSES = ["in_progress", "paused", "completed", "canceled", "failed", "draft"];
const CONTACT_FILTERS = ["pending", "scheduled", "queued", "dialing", "redial_wait", "outside_window", "done",
  "removed", "canceled", "completed", "no-answer", "busy", "failed", "voicemail"];
const AUDIT_ACTIONS = ["campaign.created", "campaign.created_and_started", "campaign.started", "campaign.paused",
  "campaign.resumed", "campaign.canceled", "contacts.appended", "contact.removed", "redial_rules.changed",
  "suppression.added", "suppression.removed", "legal_hours.override"];
const API_BASE = new URL(".", document.baseURI); // the API's root: /dashboard's directory

// --- small helpers ---------------------------------------------------------------------------

/** An element; children are nodes or strings (text, never HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const svg = (tag, attrs = {}) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
};
const $ = (sel, root = document) => root.querySelector(sel);
/** Replace `el`'s children with the nodes given, skipping null, undefined and false. */
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}
const fmtInt = (n) => (n ?? 0).toLocaleString("en-US");
const pct = (n) => `${(n ?? 0).toFixed(1)}%`;

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function fmtEta(iso, status) {
  if (FINAL.has(status)) return "done";
  if (!iso) return "—";
  const secs = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  if (secs <= 0) return "any moment";
  if (secs < 90) return `in ${secs} s`;
  if (secs < 5400) return `in ${Math.round(secs / 60)} min`;
  if (secs < 172800) return `in ${(secs / 3600).toFixed(1)} h`;
  return fmtTime(iso);
}

function badge(status) { return h("span", { class: `badge ${status}`, "data-status": status }, status); }

function safeUrl(url) {
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch { return null; }
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, envelope) {
    super(envelope?.message || `HTTP ${status}`);
    this.status = status;
    this.code = envelope?.error || null;
    this.details = envelope?.details ?? null;
  }
}

function apiKey() { return sessionStorage.getItem(KEY_STORE); }

async function request(path, { method = "GET", body, headers = {}, key = apiKey() } = {}) {
  const init = { method, headers: { "x-api-key": key || "", Accept: "application/json", ...headers },
    cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(new URL(path, API_BASE), init);
  } catch (err) {
    throw new ApiError(0, { message: `the API could not be reached (${err.message})`, error: "NETWORK_ERROR" });
  }
  if (!resp.ok) {
    let envelope = null;
    try { envelope = await resp.json(); } catch { /* not JSON */ }
    if (!envelope || typeof envelope !== "object") envelope = { message: `HTTP ${resp.status} ${resp.statusText}` };
    const err = new ApiError(resp.status, envelope);
    if (resp.status === 401 && key === apiKey()) signOut(err.message);
    throw err;
  }
  return resp;
}

async function api(path, options) { return (await request(path, options)).json(); }

// --- messages --------------------------------------------------------------------------------

/** The API's error envelope as a message: its text, its code, and each detail (row, field). */
function errorBox(err, rowLabel) {
  const items = [];
  const details = Array.isArray(err.details) ? err.details : (err.details ? [err.details] : []);
  for (const d of details.slice(0, 50)) {
    if (d && typeof d === "object") {
      const where = [d.row !== undefined && d.row !== null ? (rowLabel ? rowLabel(d.row) : `row ${d.row}`) : null,
        d.field].filter(Boolean).join(", ");
      items.push(h("li", {}, where ? `${where}: ` : "", d.message ?? JSON.stringify(d)));
    } else items.push(h("li", {}, String(d)));
  }
  if (details.length > 50) items.push(h("li", {}, `… and ${details.length - 50} more`));
  return h("div", { class: "message error", role: "alert" },
    h("strong", {}, err.message || "Something went wrong"),
    err.code ? h("span", { class: "code" }, ` (${err.code})`) : null,
    items.length ? h("ul", {}, items) : null);
}

function flash(node) {
  const area = $("#flash");
  const close = h("button", { type: "button", class: "close", "aria-label": "dismiss", onclick: () => node.remove() }, "×");
  node.prepend(close);
  fill(area, node);
}
function flashError(err, rowLabel) { flash(errorBox(err, rowLabel)); }
function flashOk(text) { flash(h("div", { class: "message ok" }, text)); }
function clearFlash() { fill($("#flash")); }
let carriedFlash = null; // a message shown on the page navigated to next

// --- live updates ----------------------------------------------------------------------------

let generation = 0; // bumped on every navigation: pollers of the page left behind stop
const timers = new Set();

function stopPolling() {
  generation += 1;
  for (const t of timers) clearTimeout(t);
  timers.clear();
}

/** Run `fn` now and every POLL_MS after it finishes, while this page is shown. */
function poll(fn) {
  const gen = generation;
  let started = false;
  const tick = async () => {
    if (gen !== generation) return;
    if (document.hidden && started) { // a tab in the background asks nothing (rate limits are per key)
      const t = setTimeout(() => { timers.delete(t); tick(); }, POLL_MS);
      timers.add(t);
      return;
    }
    started = true;
    try {
      await fn();
      if (gen === generation) setLive(null);
    } catch (err) {
      if (gen === generation) setLive(err);
    }
    if (gen !== generation) return;
    const t = setTimeout(() => { timers.delete(t); tick(); }, POLL_MS);
    timers.add(t);
  };
  return tick();
}

function setLive(err) {
  const live = $("#live");
  live.hidden = false;
  if (err) {
    live.classList.add("stale");
    live.textContent = `update failed: ${err.message}`;
  } else {
    live.classList.remove("stale");
    live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  }
}

// --- sign-in ---------------------------------------------------------------------------------

function signOut(reason) {
  sessionStorage.removeItem(KEY_STORE);
  stopPolling();
  renderSignIn(reason);
}

function renderSignIn(reason) {
  $("#nav").hidden = true;
  $("#sign-out").hidden = true;
  $("#live").hidden = true;
  clearFlash();
  const error = h("div", { id: "signin-error" });
  if (reason) error.append(errorBox({ message: reason, code: "UNAUTHORIZED" }));
  const input = h("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off",
    required: true, placeholder: "ce_…" });
  const form = h("form", { class: "stack card signin", id: "signin-form" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Enter an API key of the engine (header x-api-key). It is kept in this browser tab only."),
    h("label", {}, h("span", {}, "API key"), input),
    error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    fill(error);
    try {
      await request("getCampaignStatuses", { key });
    } catch (err) {
      fill(error, errorBox(err));
      return;
    }
    sessionStorage.setItem(KEY_STORE, key);
    if (!location.hash || location.hash === "#" || location.hash.startsWith("#/signin")) location.hash = "#/campaigns";
    else route();
  });
  fill($("#view"), form);
  input.focus();
}

// --- routing ---------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

function route() {
  stopPolling();
  if (!apiKey()) { renderSignIn(); return; }
  $("#nav").hidden = false;
  $("#sign-out").hidden = false;
  $("#live").hidden = true; // shown again by the new page's first poll
  const { parts, params } = parseHash();
  const page = parts[0] || "campaigns";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("current", a.dataset.nav === page);
  clearFlash();
  if (carriedFlash) { fill($("#flash"), carriedFlash); carriedFlash = null; }
  if (page === "campaigns" && parts[1]) renderCampaign(parts[1]);
  else if (page === "new") renderNewCampaign();
  else if (page === "suppressions") renderSuppressions(params.get("phone_number") || "");
  else if (page === "audit") renderAudit(params.get("action") || "", params.get("campaign_id") || "");
  else renderCampaigns(params.get("status") || "");
}

// --- campaigns -------------------------------------------------------------------------------

function renderCampaigns(status) {
  const select = h("select", { id: "status-filter", "aria-label": "status" },
    h("option", { value: "" }, "all statuses"),
    CAMPAIGN_STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)));
  select.addEventListener("change", () => {
    location.hash = select.value ? `#/campaigns?status=${encodeURIComponent(select.value)}` : "#/campaigns";
  });
  const summary = h("div", { class: "grid", id: "summary" });
  const tbody = h("tbody");
  const empty = h("p", { class: "muted", id: "no-campaigns", hidden: true }, "No campaigns.");
  fill($("#view"), 
    h("div", { class: "row" }, h("h1", {}, "Campaigns"), h("span", { class: "spacer" }),
      h("label", { class: "check" }, "Status ", select),
      h("a", { class: "button", href: "#/new" }, "New campaign")),
    summary,
    h("h2", {}, status ? `Campaigns ${status}` : "All campaigns"),
    h("table", { id: "campaigns" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Progress"),
        h("th", { class: "num" }, "Calls placed"), h("th", { class: "num" }, "Answer rate"), h("th", {}, "ETA"))),
      tbody),
    empty);
  poll(async () => {
    const data = await api(`getCampaignStatuses${status ? `?status=${encodeURIComponent(status)}` : ""}`);
    const s = data.summary;
    fill(summary, 
      stat("Campaigns", fmtInt(s.total_campaigns)), stat("Active", fmtInt(s.active_campaigns)),
      stat("Completed", fmtInt(s.completed_campaigns)), stat("Calls today (UTC)", fmtInt(s.total_calls_today)),
      stat("Answer rate overall", pct(s.success_rate_overall)));
    fill(tbody, ...data.campaigns.map(campaignRow));
    empty.hidden = data.campaigns.length > 0;
  });
}

function stat(label, value, id) {
  return h("div", { class: "card stat", ...(id ? { id } : {}) }, h("div", { class: "label" }, label),
    h("div", { class: "value" }, value));
}

function progressCell(percentage, final, total) {
  return h("div", { class: "progress-cell" },
    h("progress", { max: 100, value: percentage ?? 0, "aria-label": "progress" }),
    h("span", { class: "pct", "data-percentage": percentage ?? 0 }, pct(percentage)),
    h("span", { class: "muted small" }, `${fmtInt(final)}/${fmtInt(total)}`));
}

function campaignRow(c) {
  return h("tr", { "data-campaign-id": c.campaign_id },
    h("td", {}, h("a", { href: `#/campaigns/${encodeURIComponent(c.campaign_id)}` }, c.campaign_name),
      h("div", { class: "muted small" }, c.campaign_id)),
    h("td", {}, badge(c.status), c.pause_reason ? h("div", { class: "muted small" }, c.pause_reason) : null),
    h("td", {}, progressCell(c.progress.percentage, c.progress.contacts_final, c.progress.total_contacts)),
    h("td", { class: "num calls" }, fmtInt(c.call_statistics.total_calls)),
    h("td", { class: "num rate", title: `connection rate (person or machine) ${pct(c.success_metrics.connection_rate)}` },
      pct(c.success_metrics.success_rate)),
    h("td", { class: "eta" }, fmtEta(c.progress.estimated_completion, c.status)));
}

// --- one campaign ----------------------------------------------------------------------------

function renderCampaign(id) {
  const path = `campaigns/${encodeURIComponent(id)}`;
  const state = { campaign: null, filter: "", cursors: [null], page: 0, open: new Set(), attempts: null,
    attemptsAt: 0, attemptsEnded: -1, samples: [], loadingAttempts: null };

  const title = h("h1", { id: "campaign-name" }, id);
  const statusEl = h("span", { id: "campaign-status" });
  const actions = h("div", { class: "row", id: "actions" });
  const progress = h("progress", { class: "wide", id: "campaign-progress", max: 100, value: 0, "aria-label": "progress" });
  const progressText = h("div", { class: "row small", id: "progress-text" });
  const stats = h("div", { class: "grid", id: "campaign-stats" });
  const counts = h("div", { class: "two", id: "counts" });
  const chart = h("div", { class: "card chart", id: "outcome-chart" }, h("p", { class: "muted" }, "No call has ended yet."));
  const meta = h("div", { class: "muted small", id: "campaign-meta" });

  const filter = h("select", { id: "contact-filter", "aria-label": "contact filter" },
    h("option", { value: "" }, "all contacts"), CONTACT_FILTERS.map((s) => h("option", { value: s }, s)));
  const contactsBody = h("tbody");
  const pageInfo = h("span", { class: "muted", id: "page-info" });
  const prev = h("button", { type: "button", class: "secondary", id: "prev-page", disabled: true }, "Previous");
  const next = h("button", { type: "button", class: "secondary", id: "next-page", disabled: true }, "Next");

  const appendFile = h("input", { type: "file", id: "append-file", accept: ".csv,text/csv" });
  const appendButton = h("button", { type: "button", class: "secondary", id: "append-button" }, "Append contacts");
  const appendResult = h("div", { id: "append-result" });
  const appendSection = h("section", { id: "append" }, h("h2", {}, "Append contacts (CSV)"),
    h("div", { class: "card row" }, appendFile, appendButton,
      h("span", { class: "muted small" }, "Columns as for a new campaign: phone_number (or phone, number, mobile), name, email, …")),
    appendResult);

  fill($("#view"), 
    h("p", { class: "small" }, h("a", { href: "#/campaigns" }, "← Campaigns")),
    h("div", { class: "row" }, title, statusEl, h("span", { class: "spacer" }), actions),
    meta,
    h("div", { class: "card" }, progress, progressText),
    h("h2", {}, "Now"), stats,
    h("h2", {}, "Outcomes over time"), chart,
    h("h2", {}, "Counts"), counts,
    appendSection,
    h("h2", {}, "Contacts"),
    h("div", { class: "row" }, h("label", { class: "check" }, "Show ", filter), h("span", { class: "spacer" }), pageInfo, prev, next),
    h("table", { id: "contacts" },
      h("thead", {}, h("tr", {}, h("th", { class: "num" }, "#"), h("th", {}, "Phone"), h("th", {}, "State"),
        h("th", { class: "num" }, "Attempts"), h("th", {}, "Disposition"), h("th", {}, "Last outcome"),
        h("th", {}, "Next"), h("th", { class: "num" }, "Talk (s)"), h("th", {}, ""))),
      contactsBody));

  const gen = generation;
  const loadError = h("div", { id: "load-error" });
  $("#view").prepend(loadError);
  const refresh = async () => {
    let campaign;
    try {
      [campaign] = await Promise.all([api(path), loadContacts()]);
      fill(loadError);
    } catch (err) {
      if (gen === generation) fill(loadError, errorBox(err));
      throw err;
    }
    if (gen !== generation) return;
    state.campaign = campaign;
    drawCampaign(campaign);
    await drawChart(campaign);
  };

  // Actions ------------------------------------------------------------------------------
  async function act(button, label, fn) {
    button.disabled = true;
    try {
      const out = await fn();
      flashOk(out?.message ? `${label}: ${out.message}` : label);
      await refresh();
    } catch (err) {
      flashError(err);
    } finally {
      button.disabled = false;
    }
  }

  function drawActions(c) {
    const buttons = [];
    const b = (text, cls, idAttr, fn) => {
      const el = h("button", { type: "button", class: cls, id: idAttr }, text);
      el.addEventListener("click", () => fn(el));
      buttons.push(el);
    };
    if (c.status === "draft") b("Start", "", "start-button", (el) => act(el, "Started", () => api(`startCampaignv2/${encodeURIComponent(id)}`, { method: "POST" })));
    if (c.status === "in_progress") b("Pause", "secondary", "pause-button", (el) => act(el, "Paused", () => api(`pauseTheCampaign/${encodeURIComponent(id)}`, { method: "POST" })));
    if (c.status === "paused") b("Resume", "", "resume-button", (el) => act(el, "Resumed", () => api(`startCampaign/${encodeURIComponent(id)}`, { method: "POST" })));
    if (!FINAL.has(c.status)) {
      b("Cancel campaign", "danger", "cancel-button", (el) => {
        if (!window.confirm(`Cancel campaign “${c.campaign_name}”? No further calls are placed; live calls finish.`)) return;
        act(el, "Canceled", () => api(`campaigns/${encodeURIComponent(id)}/cancel`, { method: "POST" }));
      });
    }
    b("Export CSV", "secondary", "export-csv", (el) => download(el, "csv"));
    b("Export xlsx", "secondary", "export-xlsx", (el) => download(el, "xlsx"));
    const key = buttons.map((x) => x.id).join(",");
    if (actions.dataset.key !== key) { fill(actions, ...buttons); actions.dataset.key = key; }
  }

  async function download(button, format) {
    button.disabled = true;
    try {
      const resp = await request(`downloadCampaignStats?campaign_id=${encodeURIComponent(id)}&format=${format}`);
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `${id}.${format}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      flashError(err);
    } finally {
      button.disabled = false;
    }
  }

  appendButton.addEventListener("click", async () => {
    fill(appendResult);
    const file = appendFile.files[0];
    if (!file) { fill(appendResult, errorBox({ message: "choose a CSV file first" })); return; }
    appendButton.disabled = true;
    try {
      const parsed = csvToContacts(await file.text());
      if (!parsed.contacts.length) throw new ApiError(0, { message: "the file has no contact with a phone number" });
      let uploaded = 0; let duplicates = 0; let failed = parsed.errors.length;
      const rowErrors = parsed.errors.map((e) => ({ row: e.row, message: e.message, field: null }));
      for (let start = 0; start < parsed.contacts.length; start += MAX_ROWS_PER_REQUEST) {
        const chunk = parsed.contacts.slice(start, start + MAX_ROWS_PER_REQUEST);
        const out = await api(`campaigns/${encodeURIComponent(id)}/contacts`, { method: "POST", body: { contacts: chunk },
          headers: { "Idempotency-Key": `dashboard-append-${newKey()}` } });
        uploaded += out.uploaded_count; duplicates += out.duplicate_count; failed += out.failed_count;
        for (const e of out.errors) rowErrors.push({ row: parsed.sourceRows[start + e.row], field: e.field, message: e.message });
      }
      const box = h("div", { class: `message ${failed ? "error" : "ok"}`, id: "append-summary" },
        `${fmtInt(uploaded)} contact(s) appended, ${fmtInt(duplicates)} already in the campaign, ${fmtInt(failed)} refused.`);
      if (rowErrors.length) box.append(h("ul", {}, rowErrors.slice(0, 50).map((e) => h("li", {}, `file row ${e.row}: ${e.field ? `${e.field}: ` : ""}${e.message}`))));
      fill(appendResult, box);
      appendFile.value = "";
      await refresh();
    } catch (err) {
      fill(appendResult, errorBox(err, (row) => `row ${row}`));
    } finally {
      appendButton.disabled = false;
    }
  });

  // Figures ------------------------------------------------------------------------------
  function drawCampaign(c) {
    title.textContent = c.campaign_name;
    fill(statusEl, badge(c.status));
    fill(meta, `${c.campaign_id} · agent ${c.agent_id} · provider ${c.configuration.provider} · created ${fmtTime(c.created_at)}`
      + (c.started_at ? ` · started ${fmtTime(c.started_at)}` : "") + (c.finished_at ? ` · finished ${fmtTime(c.finished_at)}` : ""));
    drawActions(c);
    appendSection.hidden = FINAL.has(c.status); // a finished campaign takes no contacts
    progress.value = c.percentage;
    const final = Object.entries(c.by_state).filter(([k]) => FINAL_CONTACT.has(k)).reduce((a, [, v]) => a + v, 0);
    fill(progressText, 
      h("strong", { id: "campaign-percentage", "data-percentage": c.percentage }, pct(c.percentage)),
      h("span", {}, `${fmtInt(final)} of ${fmtInt(c.total_contacts)} contacts final`),
      h("span", { class: "muted" }, `ETA ${fmtEta(c.estimated_completion, c.status)}`));
    const cap = c.configuration.max_concurrent_calls;
    const ended = Object.values(c.outcome_counts).reduce((a, v) => a + v, 0);
    const answered = c.outcome_counts.completed || 0;
    fill(stats, 
      stat("Calls placed", fmtInt(c.calls_placed), "stat-calls"),
      stat("Concurrency in use", cap ? `${fmtInt(c.live_calls)} / ${fmtInt(cap)}` : `${fmtInt(c.live_calls)} (no cap)`, "stat-live"),
      stat("Answer rate", ended ? pct((100 * answered) / ended) : "—", "stat-answer"),
      stat("Redials made", fmtInt(c.redials_made)),
      stat("Waiting to redial", fmtInt(c.pending_redials)),
      stat("Next redial", c.next_redial_at ? fmtTime(c.next_redial_at) : "—", "stat-next-redial"),
      stat("ETA", fmtEta(c.estimated_completion, c.status)),
      ...(c.duplicates_merged ? [stat("Duplicates merged", fmtInt(c.duplicates_merged))] : []),
      ...(c.missing_contacts ? [stat("Missing contacts", fmtInt(c.missing_contacts))] : []),
      ...(c.pause_reason ? [stat("Pause reason", c.pause_reason)] : []));
    fill(counts, 
      countsTable("By state", c.by_state, "counts-state"),
      countsTable("By disposition", c.by_disposition, "counts-disposition"),
      countsTable("Calls by outcome", c.outcome_counts, "counts-outcome"));
  }

  function countsTable(caption, obj, idAttr) {
    const entries = Object.entries(obj || {}).filter(([, v]) => v).sort((a, b) => b[1] - a[1]);
    return h("table", { class: "counts", id: idAttr },
      h("thead", {}, h("tr", {}, h("th", {}, caption), h("th", { class: "num" }, "count"))),
      h("tbody", {}, entries.length ? entries.map(([k, v]) => h("tr", { "data-key": k }, h("td", {}, k), h("td", { class: "num" }, fmtInt(v))))
        : h("tr", {}, h("td", { class: "muted", colspan: 2 }, "none"))));
  }

  // The attempts: the export (one row per attempt), parsed here; reused by the chart.
  async function loadAttempts(force) {
    if (state.loadingAttempts) return state.loadingAttempts;
    if (!force && state.attempts && Date.now() - state.attemptsAt < CHART_REFRESH_MS) return state.attempts;
    state.loadingAttempts = (async () => {
      try {
        const resp = await request(`downloadCampaignStats?campaign_id=${encodeURIComponent(id)}&format=csv`);
        const rows = parseCsv(await resp.text());
        const head = rows[0] || [];
        const at = Object.fromEntries(head.map((k, i) => [k, i]));
        const byContact = new Map();
        const names = new Map(); // the contacts' names (the contacts page has none)
        const ended = [];
        for (const r of rows.slice(1)) {
          if (r[at.name]) names.set(Number(r[at.contact_index]), r[at.name]);
          if (!r[at.attempt]) continue;
          const a = { contact: Number(r[at.contact_index]), attempt: Number(r[at.attempt]), placed: r[at.attempt_time],
            ended: r[at.ended_at], outcome: r[at.outcome], duration: r[at.duration_seconds], recording: r[at.recording_url],
            hangup: r[at.hangup_cause], callId: r[at.call_id] };
          if (!byContact.has(a.contact)) byContact.set(a.contact, []);
          byContact.get(a.contact).push(a);
          if (a.ended && a.outcome) ended.push(a);
        }
        for (const list of byContact.values()) list.sort((x, y) => x.attempt - y.attempt);
        ended.sort((x, y) => new Date(x.ended) - new Date(y.ended));
        state.attempts = { byContact, ended, names };
        state.attemptsAt = Date.now();
        return state.attempts;
      } finally {
        state.loadingAttempts = null;
      }
    })();
    return state.loadingAttempts;
  }

  async function drawChart(c) {
    const ended = Object.values(c.outcome_counts).reduce((a, v) => a + v, 0);
    let series; // [{t: ms, counts: {outcome: cumulative}}]
    if (c.total_contacts <= CHART_EXPORT_LIMIT) {
      // From the export's attempts: fetched again when calls ended since, at most every few
      // seconds, and once more after the campaign has finished.
      if (ended === 0) return;
      const fresh = state.attempts && ended === state.attemptsEnded;
      if (fresh || state.chartDone) return;
      if (state.attempts && Date.now() - state.attemptsAt < CHART_REFRESH_MS) return;
      const done = FINAL.has(c.status);
      const data = await loadAttempts(true);
      state.attemptsEnded = data.ended.length;
      // Finished: no more fetches once the export has every ended call (or after a few tries).
      if (done) state.finalFetches = (state.finalFetches || 0) + 1;
      state.chartDone = done && (data.ended.length >= ended || state.finalFetches >= 5);
      series = cumulative(data.ended);
    } else {
      state.samples.push({ t: Date.now(), counts: { ...c.outcome_counts } });
      if (state.samples.length > 2000) state.samples.shift();
      series = state.samples;
    }
    if (gen !== generation || series.length === 0) return;
    const from = c.total_contacts > CHART_EXPORT_LIMIT ? series[0].t : new Date(c.started_at || series[0].t).getTime();
    const to = c.finished_at ? new Date(c.finished_at).getTime() : Date.now();
    fill(chart, lineChart(series, Math.min(from, series[0].t), Math.max(to, series[series.length - 1].t)),
      legend(series));
    if (c.total_contacts > CHART_EXPORT_LIMIT) chart.append(h("p", { class: "muted small" }, "Since this page was opened."));
    chart.dataset.points = String(series.length);
  }

  function cumulative(list) {
    const running = {};
    const out = [];
    for (const a of list) {
      running[a.outcome] = (running[a.outcome] || 0) + 1;
      out.push({ t: new Date(a.ended).getTime(), counts: { ...running } });
    }
    return out;
  }

  function legend(series) {
    const last = series[series.length - 1].counts;
    return h("div", { class: "legend" }, Object.keys(last).sort(outcomeOrder).map((o) =>
      h("span", { "data-outcome": o }, h("span", { class: `swatch o-${OUTCOMES.includes(o) ? o : "other"}` }), `${o} ${fmtInt(last[o])}`)));
  }

  // Contacts -----------------------------------------------------------------------------
  filter.addEventListener("change", () => {
    state.filter = filter.value; state.cursors = [null]; state.page = 0;
    loadContacts().catch(flashError);
  });
  prev.addEventListener("click", () => { if (state.page > 0) { state.page -= 1; loadContacts().catch(flashError); } });
  next.addEventListener("click", () => {
    if (state.cursors[state.page + 1]) { state.page += 1; loadContacts().catch(flashError); }
  });

  async function loadContacts() {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.filter) q.set("status", state.filter);
    const cursor = state.cursors[state.page];
    if (cursor) q.set("cursor", cursor);
    const page = await api(`${path}/contacts?${q}`);
    if (gen !== generation) return;
    state.cursors[state.page + 1] = page.next_cursor;
    state.cursors.length = state.page + 2;
    const first = state.page * PAGE_SIZE;
    pageInfo.textContent = page.total ? `${fmtInt(first + 1)}–${fmtInt(first + page.contacts.length)} of ${fmtInt(page.total)}` : "none";
    prev.disabled = state.page === 0;
    next.disabled = !page.next_cursor;
    // The open contacts' attempts come from the export: fetched again (at most every few
    // seconds) only while what it holds for them is behind what the page shows.
    const stale = (ct) => {
      const list = state.attempts?.byContact.get(ct.index) || [];
      return list.length < ct.attempts || (list.length > 0 && !list[list.length - 1].outcome && ct.state !== "dialing");
    };
    const shown = page.contacts.filter((ct) => state.open.has(ct.index));
    let attempts = state.attempts;
    if (shown.length && (!attempts || shown.some(stale))) attempts = await loadAttempts(false).catch(() => state.attempts);
    if (gen !== generation) return;
    // Redrawn only when something shown changed (rows stay put under the pointer).
    const signature = JSON.stringify([page.contacts, [...state.open], state.attempts ? state.attemptsAt : 0,
      state.campaign ? FINAL.has(state.campaign.status) : null]);
    if (signature === state.contactsSignature) return;
    state.contactsSignature = signature;
    fill(contactsBody, ...page.contacts.flatMap((ct) => contactRows(ct, attempts)));
  }

  function contactRows(ct, attempts) {
    const open = state.open.has(ct.index);
    const toggle = h("button", { type: "button", class: "link", "data-action": "attempts", disabled: ct.attempts === 0 },
      open ? "hide attempts" : "attempts");
    toggle.addEventListener("click", async () => {
      if (state.open.has(ct.index)) state.open.delete(ct.index); else state.open.add(ct.index);
      try {
        if (state.open.has(ct.index)) await loadAttempts(true);
        await loadContacts();
      } catch (err) { flashError(err); }
    });
    const cells = [toggle];
    if (!FINAL_CONTACT.has(ct.state) && state.campaign && !FINAL.has(state.campaign.status)) {
      const remove = h("button", { type: "button", class: "link", "data-action": "remove" }, "remove");
      remove.addEventListener("click", async () => {
        if (!window.confirm(`Remove ${ct.phone_number} from the campaign? It is not called again.`)) return;
        remove.disabled = true;
        try {
          const out = await api(`${path}/contacts/${encodeURIComponent(ct.phone_number)}`, { method: "DELETE" });
          flashOk(`${ct.phone_number}: ${out.message}`);
          await refresh();
        } catch (err) { flashError(err); remove.disabled = false; }
      });
      cells.push(remove);
    }
    const row = h("tr", { "data-index": ct.index, "data-phone": ct.phone_number, "data-state": ct.state },
      h("td", { class: "num" }, ct.index),
      h("td", {}, ct.phone_number, state.attempts?.names.get(ct.index)
        ? h("div", { class: "muted small contact-name" }, state.attempts.names.get(ct.index)) : null),
      h("td", { class: "state" }, ct.state, ct.reason ? h("div", { class: "muted small" }, ct.reason) : null),
      h("td", { class: "num" }, ct.attempts),
      h("td", { class: "disposition" }, ct.disposition || "—"),
      h("td", {}, ct.last_outcome || "—"),
      h("td", {}, ct.next_action ? `${ct.next_action}${ct.next_action_at ? ` · ${fmtTime(ct.next_action_at)}` : ""}` : "—"),
      h("td", { class: "num" }, ct.talk_seconds ? ct.talk_seconds.toFixed(1) : "—"),
      h("td", {}, cells));
    if (!open) return [row];
    const list = attempts?.byContact.get(ct.index) || [];
    const detail = h("tr", { class: "attempts", "data-attempts-of": ct.index }, h("td", { colspan: 9 },
      list.length ? h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Attempt"), h("th", {}, "Placed"), h("th", {}, "Ended"), h("th", {}, "Outcome"),
          h("th", { class: "num" }, "Duration (s)"), h("th", {}, "Hang-up cause"), h("th", {}, "Recording"))),
        h("tbody", {}, list.map((a) => {
          const url = a.recording ? safeUrl(a.recording) : null;
          return h("tr", { class: "attempt" }, h("td", {}, a.attempt), h("td", {}, fmtTime(a.placed)), h("td", {}, fmtTime(a.ended)),
            h("td", { class: "outcome" }, a.outcome || "in progress"), h("td", { class: "num" }, a.duration || "—"),
            h("td", {}, a.hangup || "—"),
            h("td", {}, url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, "recording") : "—"));
        })))
        : h("span", { class: "muted" }, "No attempt recorded yet.")));
    return [row, detail];
  }

  poll(refresh);
}

function outcomeOrder(a, b) {
  const ia = OUTCOMES.indexOf(a); const ib = OUTCOMES.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
}

/** Cumulative calls by outcome over time, one line per outcome, as inline SVG. */
function lineChart(series, from, to) {
  const W = 800; const H = 220; const L = 44; const R = 12; const T = 10; const B = 26;
  const t0 = from; const t1 = Math.max(to, t0 + 1000);
  const outcomes = Object.keys(series[series.length - 1].counts).sort(outcomeOrder);
  const max = Math.max(1, ...outcomes.map((o) => series[series.length - 1].counts[o] || 0));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "calls ended by outcome over time",
    preserveAspectRatio: "none" });
  for (const frac of [0, 0.5, 1]) {
    const v = Math.round(max * frac);
    root.append(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const label = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }); label.textContent = String(v); root.append(label);
  }
  root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  for (const [t, anchor] of [[t0, "start"], [t1, "end"]]) {
    const label = svg("text", { x: x(t), y: H - 8, "text-anchor": anchor });
    label.textContent = t1 - t0 > 86400000 ? new Date(t).toLocaleString() : new Date(t).toLocaleTimeString();
    root.append(label);
  }
  for (const o of outcomes) {
    // A step line from zero at the start: up by one at each call that ended so.
    let d = `M${x(t0).toFixed(1)},${y(0).toFixed(1)}`;
    for (const p of series) {
      d += ` H${x(p.t).toFixed(1)} V${y(p.counts[o] || 0).toFixed(1)}`;
    }
    d += ` H${x(t1).toFixed(1)}`;
    root.append(svg("path", { d, fill: "none", stroke: OUTCOME_COLORS[o] || "#0e7490", "stroke-width": 2, "data-outcome": o }));
  }
  return root;
}

// --- new campaign ----------------------------------------------------------------------------

function renderNewCampaign() {
  let parsed = null;
  const field = (label, input, hint) => h("label", {}, h("span", {}, label), input, hint ? h("div", { class: "muted small" }, hint) : null);
  const name = h("input", { type: "text", name: "campaignName", id: "campaign-name-input", required: true, maxlength: 200 });
  const agent = h("input", { type: "text", name: "agentId", id: "agent-id-input", required: true, maxlength: 100 });
  const file = h("input", { type: "file", name: "file", id: "csv-file", accept: ".csv,text/csv", required: true });
  const concurrency = h("input", { type: "number", name: "maxConcurrentCalls", id: "max-concurrent", min: 1, max: 1000 });
  const cps = h("input", { type: "number", name: "callsPerSecond", id: "calls-per-second", min: 0.01, max: 100, step: "any" });
  const expected = h("input", { type: "number", name: "expectedCallSeconds", id: "expected-call-seconds", min: 1, step: "any" });
  const provider = h("input", { type: "text", name: "provider", id: "provider", placeholder: "the deployment's default" });
  const webhook = h("input", { type: "url", name: "notificationWebhookUrl", id: "webhook", placeholder: "https://…" });
  const scheduled = h("input", { type: "checkbox", name: "isScheduledCall", id: "is-scheduled" });
  const context = h("input", { type: "checkbox", name: "isContextBasedCall", id: "is-context", checked: true });
  const redial = h("input", { type: "checkbox", name: "redial", id: "redial-enabled" });
  const attempts = h("input", { type: "number", name: "maxAttempts", id: "max-attempts", min: 1, max: 20, value: 3 });
  const intervals = h("input", { type: "text", name: "retryIntervals", id: "retry-intervals", value: "3600, 7200" });
  const run = h("input", { type: "checkbox", name: "run", id: "run-now", checked: true });
  const preview = h("div", { class: "preview", id: "csv-preview" });
  const result = h("div", { id: "new-result" });
  const submit = h("button", { type: "submit", id: "create-button" }, "Create campaign");

  file.addEventListener("change", async () => {
    parsed = null;
    fill(preview);
    const f = file.files[0];
    if (!f) return;
    try {
      parsed = csvToContacts(await f.text());
    } catch (err) {
      fill(preview, errorBox({ message: `${f.name}: ${err.message}` }));
      return;
    }
    const c = parsed.columns;
    const sample = parsed.contacts.slice(0, 5);
    fill(preview, 
      h("p", { id: "csv-summary" }, `${fmtInt(parsed.contacts.length)} contact(s) read from ${f.name}; phone column “${c.phone_number}”`
        + (parsed.customColumns.length ? `; custom_data: ${parsed.customColumns.join(", ")}` : "")
        + (parsed.errors.length ? `; ${parsed.errors.length} row(s) skipped` : "")),
      parsed.errors.length ? errorBox({ message: "Rows skipped", details: parsed.errors }, (r) => `file row ${r}`) : null,
      sample.length ? h("table", {},
        h("thead", {}, h("tr", {}, ["phone_number", "name", "email", "scheduledCallDateTime", "timezone", "custom_data"].map((k) => h("th", {}, k)))),
        h("tbody", {}, sample.map((ct) => h("tr", {},
          h("td", {}, ct.phone_number), h("td", {}, ct.name || ""), h("td", {}, ct.email || ""),
          h("td", {}, ct.scheduledCallDateTime || ""), h("td", {}, ct.timezone || ""),
          h("td", {}, ct.custom_data ? JSON.stringify(ct.custom_data) : ""))))) : null);
  });

  const form = h("form", { class: "stack card", id: "new-campaign-form", novalidate: true },
    h("h1", {}, "New campaign"),
    field("Campaign name", name), field("Agent ID", agent),
    field("Contacts (CSV)", file, "Header row; phone_number (or phone, number, mobile), name, email, scheduledCallDateTime (ISO 8601 with a zone), timezone (IANA); every other column goes into custom_data."),
    preview,
    h("fieldset", {}, h("legend", {}, "Dialing"),
      field("Max concurrent calls", concurrency), field("Calls per second", cps),
      field("Expected call length (s)", expected), field("Provider", provider), field("Notification webhook URL", webhook),
      h("label", { class: "check" }, scheduled, "Scheduled calls (each row needs scheduledCallDateTime)"),
      h("label", { class: "check" }, context, "Context-based call (custom_data goes to the agent)")),
    h("fieldset", {}, h("legend", {}, "Redials"),
      h("label", { class: "check" }, redial, "Redial unanswered, busy and failed calls"),
      field("Max attempts (the first call included)", attempts), field("Seconds before each redial (comma-separated)", intervals)),
    h("label", { class: "check" }, run, "Start calling at once (else a draft you start later)"),
    result,
    submit);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fill(result);
    const problems = [];
    if (!name.value.trim()) problems.push({ field: "campaignName", message: "required" });
    if (!agent.value.trim()) problems.push({ field: "agentId", message: "required" });
    if (!parsed) problems.push({ field: "file", message: file.files[0] ? "the file could not be read" : "choose a CSV file" });
    else if (!parsed.contacts.length) problems.push({ field: "file", message: "no contact with a phone number" });
    if (problems.length) { fill(result, errorBox({ message: "The form is incomplete", details: problems })); return; }
    const settings = { isScheduledCall: scheduled.checked, isContextBasedCall: context.checked };
    const num = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
    if (num(concurrency) !== undefined) settings.maxConcurrentCalls = num(concurrency);
    if (num(cps) !== undefined) settings.callsPerSecond = num(cps);
    if (num(expected) !== undefined) settings.expectedCallSeconds = num(expected);
    if (provider.value.trim()) settings.provider = provider.value.trim();
    if (webhook.value.trim()) settings.notificationWebhookUrl = webhook.value.trim();
    if (redial.checked) {
      settings.redialConfig = { enabled: true, maxAttempts: num(attempts) };
      const list = intervals.value.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
      if (list.length) settings.redialConfig.retryIntervals = list;
    }
    submit.disabled = true;
    const rowLabel = (offset) => (row) => `row ${row} (file row ${parsed.sourceRows[offset + row] ?? "?"})`;
    let offset = 0;
    let id;
    let sent = 0;
    try {
      const contacts = parsed.contacts;
      const key = newKey();
      if (run.checked && contacts.length <= MAX_ROWS_PER_REQUEST) {
        // One request: the API validates every row and starts nothing when one is invalid.
        const out = await api("uploadCampaignDataAndRun", { method: "POST", headers: { "Idempotency-Key": `dashboard-${key}` },
          body: { campaignName: name.value.trim(), agentId: agent.value.trim(), ...settings, contacts } });
        id = out.data.campaign.campaignId;
      } else {
        // A draft, appended to in pages of 1000, then started: invalid rows are reported and the rest kept.
        const rowErrors = [];
        for (offset = 0; offset < contacts.length; offset += MAX_ROWS_PER_REQUEST) {
          const chunk = contacts.slice(offset, offset + MAX_ROWS_PER_REQUEST);
          const body = id ? { campaign_id: id, contacts: chunk }
            : { campaign_name: name.value.trim(), agent_id: agent.value.trim(), ...settings, contacts: chunk };
          const out = await api("uploadCampaignData", { method: "POST", body,
            headers: { "Idempotency-Key": `dashboard-${key}-${offset}` } });
          id = out.campaign_id;
          sent = offset + chunk.length;
          for (const e of out.errors) rowErrors.push({ row: parsed.sourceRows[offset + e.row], field: e.field, message: e.message });
        }
        offset = 0;
        if (run.checked) await api(`startCampaignv2/${encodeURIComponent(id)}`, { method: "POST" });
        if (rowErrors.length) {
          flashError({ message: `${rowErrors.length} row(s) were refused; the others were kept`, details: rowErrors }, (r) => `file row ${r}`);
        }
      }
      if (!($("#flash").children.length)) flashOk(`Campaign ${id} created${run.checked ? " and started" : " (draft)"}`);
      carriedFlash = $("#flash").firstChild;
      location.hash = `#/campaigns/${encodeURIComponent(id)}`;
    } catch (err) {
      fill(result, errorBox(err, rowLabel(offset)));
      if (id) { // a draft exists with the rows sent before this failure: say so, do not make another
        result.append(h("div", { class: "message error" }, `Campaign ${id} exists as a draft with the first `
          + `${fmtInt(sent)} row(s) of the file sent; append the others or start it from `, h("a", { href: `#/campaigns/${encodeURIComponent(id)}` }, "its page"), "."));
      }
    } finally {
      submit.disabled = false;
    }
  });
  fill($("#view"), form);
  name.focus();
}

// --- the suppression list ----------------------------------------------------------------------

/** Previous/Next over an API's next_cursor: `state.cursors[i]` is the cursor of page i. */
function pager(prefix, state, load) {
  const info = h("span", { class: "muted", id: `${prefix}-page-info` });
  const prev = h("button", { type: "button", class: "secondary", id: `${prefix}-prev`, disabled: true }, "Previous");
  const next = h("button", { type: "button", class: "secondary", id: `${prefix}-next`, disabled: true }, "Next");
  prev.addEventListener("click", () => { if (state.page > 0) { state.page -= 1; load().catch(flashError); } });
  next.addEventListener("click", () => {
    if (state.cursors[state.page + 1] != null) { state.page += 1; load().catch(flashError); }
  });
  const update = (nextCursor, text) => {
    state.cursors[state.page + 1] = nextCursor ?? null;
    state.cursors.length = state.page + 2;
    prev.disabled = state.page === 0;
    next.disabled = nextCursor == null;
    info.textContent = text;
  };
  return { node: h("div", { class: "row pager" }, prev, info, next), update };
}

function renderSuppressions(lookup) {
  const state = { cursors: [null], page: 0, signature: null };
  const numbers = h("textarea", { id: "suppress-numbers", name: "phone_numbers", rows: 4, required: true,
    placeholder: "+14155550100\n+919800000001" });
  const reason = h("input", { type: "text", id: "suppress-reason", name: "reason", maxlength: 500 });
  const expires = h("input", { type: "datetime-local", id: "suppress-expires", name: "expires_at" });
  const result = h("div", { id: "suppress-result" });
  const addButton = h("button", { type: "submit", id: "suppress-add" }, "Add to the list");
  const form = h("form", { class: "stack card", id: "suppress-form", novalidate: true },
    h("h2", {}, "Add numbers"),
    h("label", {}, h("span", {}, "Numbers (E.164, one per line)"), numbers),
    h("label", {}, h("span", {}, "Reason"), reason),
    h("label", {}, h("span", {}, "Expires (your local time; empty: never)"), expires),
    result, addButton);
  const lookupInput = h("input", { type: "text", id: "suppress-lookup", name: "phone_number", value: lookup,
    placeholder: "+14155550100", "aria-label": "number to look up" });
  const lookupForm = h("form", { class: "row", id: "suppress-lookup-form" }, lookupInput,
    h("button", { type: "submit", class: "secondary" }, "Look up"),
    lookup ? h("a", { href: "#/suppressions", id: "suppress-show-all" }, "show all") : null);
  const total = h("span", { class: "muted", id: "suppress-total" });
  const tbody = h("tbody");
  const empty = h("p", { class: "muted", id: "no-suppressions", hidden: true },
    lookup ? `${lookup} is not on the list.` : "The list is empty.");
  const loadError = h("div", { id: "suppress-load-error" });
  const paging = pager("suppress", state, load);

  lookupForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = lookupInput.value.trim();
    location.hash = v ? `#/suppressions?phone_number=${encodeURIComponent(v)}` : "#/suppressions";
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fill(result);
    const list = numbers.value.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
    if (!list.length) { fill(result, errorBox({ message: "Enter at least one number", details: [{ field: "phone_numbers", message: "required" }] })); return; }
    const body = { phone_numbers: list };
    if (reason.value.trim()) body.reason = reason.value.trim();
    if (expires.value) {
      const d = new Date(expires.value);
      if (Number.isNaN(d.getTime())) { fill(result, errorBox({ message: "The expiry is not a date" })); return; }
      body.expires_at = d.toISOString();
    }
    addButton.disabled = true;
    try {
      const out = await api("suppressions", { method: "POST", body });
      flashOk(`${fmtInt(out.received)} number(s) received: ${fmtInt(out.added)} added, ${fmtInt(out.updated)} already listed (updated)`);
      numbers.value = "";
      state.signature = null;
      await load();
    } catch (err) {
      // The API names a bad number by its index; show its line in the box (1-based) too.
      fill(result, errorBox(err, (row) => `line ${row + 1} (${list[row] ?? "?"})`));
    } finally { addButton.disabled = false; }
  });

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (lookup) q.set("phone_number", lookup);
    const cursor = state.cursors[state.page];
    if (cursor) q.set("cursor", cursor);
    let data;
    try {
      data = await api(`suppressions?${q}`);
      fill(loadError);
    } catch (err) {
      if (err.status === 400) { fill(loadError, errorBox(err)); fill(tbody); empty.hidden = true; return; }
      throw err;
    }
    const first = state.page * PAGE_SIZE;
    paging.update(data.next_cursor, data.suppressions.length
      ? `${fmtInt(first + 1)}–${fmtInt(first + data.suppressions.length)} of ${fmtInt(data.total)}` : "");
    total.textContent = lookup ? "" : `${fmtInt(data.total)} number(s) on the list`;
    empty.hidden = data.suppressions.length > 0;
    const signature = JSON.stringify(data.suppressions);
    if (signature === state.signature) return;
    state.signature = signature;
    fill(tbody, ...data.suppressions.map(suppressionRow));
  }

  function suppressionRow(s) {
    const remove = h("button", { type: "button", class: "link", "data-action": "unsuppress" }, "remove");
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Remove ${s.phone_number} from the suppression list? Campaigns may call it again.`)) return;
      remove.disabled = true;
      try {
        await api(`suppressions/${encodeURIComponent(s.phone_number)}`, { method: "DELETE" });
        flashOk(`${s.phone_number} removed from the suppression list`);
        state.signature = null;
        await load();
      } catch (err) { flashError(err); remove.disabled = false; }
    });
    return h("tr", { "data-phone": s.phone_number },
      h("td", { class: "phone" }, s.phone_number),
      h("td", { class: "reason" }, s.reason || "—"),
      h("td", { class: "source" }, s.source, s.source_ref ? h("div", { class: "muted small" }, s.source_ref) : null),
      h("td", {}, fmtTime(s.created_at)),
      h("td", { class: "expires" }, s.expires_at ? fmtTime(s.expires_at) : "never"),
      h("td", {}, remove));
  }

  fill($("#view"),
    h("div", { class: "row" }, h("h1", {}, "Suppression list"), h("span", { class: "spacer" }), lookupForm),
    h("p", { class: "muted" }, "Numbers on this list are never dialled by any campaign of this key's tenant."),
    loadError,
    h("div", { class: "row" }, total),
    h("table", { id: "suppressions" },
      h("thead", {}, h("tr", {}, h("th", {}, "Number"), h("th", {}, "Reason"), h("th", {}, "Source"),
        h("th", {}, "Added"), h("th", {}, "Expires"), h("th", {}, ""))),
      tbody),
    empty, paging.node, form);
  poll(load);
}

// --- the audit trail ---------------------------------------------------------------------------

function renderAudit(action, campaignId) {
  const state = { cursors: [0], page: 0, signature: null };
  const actionInput = h("input", { type: "text", id: "audit-action", name: "action", value: action, list: "audit-actions",
    placeholder: "any action", maxlength: 48, "aria-label": "action" });
  const actions = h("datalist", { id: "audit-actions" }, AUDIT_ACTIONS.map((a) => h("option", { value: a })));
  const campaignInput = h("input", { type: "text", id: "audit-campaign", name: "campaign_id", value: campaignId,
    placeholder: "any campaign", maxlength: 64, "aria-label": "campaign id" });
  const filters = h("form", { class: "row", id: "audit-filter" },
    h("label", { class: "check" }, "Action ", actionInput, actions),
    h("label", { class: "check" }, "Campaign ", campaignInput),
    h("button", { type: "submit", class: "secondary" }, "Filter"),
    action || campaignId ? h("a", { href: "#/audit", id: "audit-clear" }, "clear") : null);
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (actionInput.value.trim()) q.set("action", actionInput.value.trim());
    if (campaignInput.value.trim()) q.set("campaign_id", campaignInput.value.trim());
    location.hash = `#/audit${q.toString() ? `?${q}` : ""}`;
  });
  const tbody = h("tbody");
  const empty = h("p", { class: "muted", id: "no-events", hidden: true }, "No event.");
  const paging = pager("audit", state, load);

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE), cursor: String(state.cursors[state.page] || 0) });
    if (action) q.set("action", action);
    if (campaignId) q.set("campaign_id", campaignId);
    const data = await api(`audit?${q}`);
    const first = state.page * PAGE_SIZE;
    paging.update(data.next_cursor, data.events.length
      ? `events ${fmtInt(first + 1)}–${fmtInt(first + data.events.length)}` : "");
    empty.hidden = data.events.length > 0;
    const signature = JSON.stringify(data.events);
    if (signature === state.signature) return;
    state.signature = signature;
    fill(tbody, ...data.events.map((e) => h("tr", { "data-seq": e.seq, "data-action": e.action },
      h("td", {}, fmtTime(e.at)),
      h("td", { class: "action" }, h("code", {}, e.action)),
      h("td", { class: "campaign" }, e.campaign_id
        ? h("a", { href: `#/campaigns/${encodeURIComponent(e.campaign_id)}` }, e.campaign_id) : "—"),
      h("td", { class: "key" }, e.key_id ? h("code", {}, e.key_id) : "—"),
      h("td", { class: "details" }, e.subject ? h("div", {}, e.subject) : null,
        e.details ? h("code", { class: "json" }, JSON.stringify(e.details)) : null))));
  }

  fill($("#view"),
    h("div", { class: "row" }, h("h1", {}, "Audit trail"), h("span", { class: "spacer" }), filters),
    h("p", { class: "muted" }, "What this tenant's API keys did (key id: the first 16 hex digits of the key's SHA-256), oldest first as the API pages it."),
    h("table", { id: "audit" },
      h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Action"), h("th", {}, "Campaign"),
        h("th", {}, "Key id"), h("th", {}, "Details"))),
      tbody),
    empty, paging.node);
  poll(load);
}

// --- start -----------------------------------------------------------------------------------

$("#sign-out").addEventListener("click", () => { signOut(); location.hash = ""; });
window.addEventListener("hashchange", route);
route();
