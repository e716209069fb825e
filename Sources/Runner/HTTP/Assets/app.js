// The dashboard of syft-sandbox-run: plain JavaScript, no framework, no
// build step. Served with a strict CSP (scripts and styles from this origin
// only), so the page never uses inline code, and never puts job-provided
// text into innerHTML: everything is built with DOM APIs and textContent.
//
// Sections: 1 helpers · 2 token and requests · 3 notices and dialogs ·
// 4 status header · 5 stats chart · 6 review and jobs in progress ·
// 7 history · 8 ANSI log renderer · 9 job page · 10 submit form ·
// 11 router and refresh loop.
"use strict";

(() => {
  // ---------------------------------------------------------------------
  // 1. Helpers
  // ---------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  /** el("a", {href: "#/", class: "x", text: "hi", data: {testid: "y"}}, [children]) */
  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of [].concat(children)) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value == null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "data") for (const [k, v] of Object.entries(value)) node.setAttribute("data-" + k, String(v));
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  const pad = (n, width = 2) => String(n).padStart(width, "0");

  /** A time: "20:47:04" today, "11-29 20:47" this year, else the date. */
  function fmtTime(value) {
    if (!value) return "–";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    const now = new Date();
    const hms = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
    if (date.toDateString() === now.toDateString()) return hms;
    const md = `${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
    if (date.getFullYear() === now.getFullYear()) return `${md} ${hms.slice(0, 5)}`;
    return `${date.getFullYear()}-${md} ${hms.slice(0, 5)}`;
  }

  function fmtFullTime(value) {
    if (!value) return "–";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  function fmtDuration(ms) {
    if (ms == null) return "–";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${pad(Math.floor(s % 60))}s`;
    return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  }

  function fmtUptime(seconds) {
    if (seconds == null) return "–";
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  function fmtBytes(bytes) {
    if (bytes == null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = Number(bytes), unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
  }

  function debounce(fn, ms) {
    let timer = 0;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  const enc = encodeURIComponent;
  const jobHref = (id) => "#/jobs/" + enc(id);

  // Statuses: the order of the chart's stacks, and the badge tone of each.
  const RUN_STATUSES = ["succeeded", "failed", "timed_out", "killed", "setup_failed"];
  const TONES = {
    succeeded: "good", done: "good",
    failed: "bad", rejected: "bad", setup_failed: "bad", refused: "bad",
    timed_out: "warn", killed: "warn", pending: "warn", stopping: "warn",
    running: "info", queued: "info", received: "info", approved: "info",
  };
  const TERMINAL = new Set(["succeeded", "failed", "timed_out", "killed", "setup_failed", "refused",
    "done", "rejected", "finished"]);

  function badge(status, attrs = {}) {
    return el("span", { class: `badge tone-${TONES[status] || "neutral"}`, data: { status }, text: status, ...attrs });
  }

  function setBadge(node, status) {
    node.textContent = status || "";
    node.className = `badge tone-${TONES[status] || "neutral"}`;
    node.setAttribute("data-status", status || "");
  }

  /** Fills a <dl> from [label, value] pairs; null values are left out. */
  function fillFacts(dl, pairs) {
    const rows = [];
    for (const [label, value, cls] of pairs) {
      if (value == null || value === "") continue;
      rows.push(el("div", { class: cls || null }, [el("dt", { text: label }), el("dd", {}, [value])]));
    }
    if (!rows.length) rows.push(el("div", {}, [el("dd", { class: "muted", text: "–" })]));
    dl.replaceChildren(...rows);
  }

  // ---------------------------------------------------------------------
  // 2. Token and requests
  // ---------------------------------------------------------------------

  const TOKEN_KEY = "syft_sandbox_token";
  let token = "";
  try { token = localStorage.getItem(TOKEN_KEY) || ""; } catch { token = ""; }

  class Cancelled extends Error {}
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function setToken(value) {
    token = value || "";
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch { /* private mode: the token lives in memory only */ }
    // GETs that cannot send a header (EventSource, download links) send this cookie.
    document.cookie = token
      ? `${TOKEN_KEY}=${token}; path=/; SameSite=Strict`
      : `${TOKEN_KEY}=; path=/; SameSite=Strict; max-age=0`;
    $("token-button").textContent = token ? "Token ✓" : "Token";
    $("token-button").title = token ? "The owner's token is set" : "Enter the owner's token";
  }

  /**
   * fetch() on this origin. Non-GET requests carry the owner's token, asked
   * for once when first needed; a 401 forgets it and asks again.
   */
  async function request(path, { method = "GET", body, headers = {}, signal } = {}) {
    let auth = method !== "GET" && method !== "HEAD";
    for (let attempt = 0; ; attempt++) {
      const sent = { ...headers };
      if (auth) {
        if (!token) await askToken();
        sent.Authorization = "Bearer " + token;
      }
      const response = await fetch(path, { method, body, headers: sent, credentials: "same-origin",
        cache: "no-store", signal });
      if (response.status !== 401 || attempt >= 3) return response;
      const message = await errorText(response);
      if (auth) setToken("");
      await askToken(auth ? "The token was refused: " + message : message);
      auth = true;
    }
  }

  async function errorText(response) {
    try {
      const data = await response.clone().json();
      if (data && data.error) return data.error;
    } catch { /* not JSON */ }
    return `${response.status} ${response.statusText}`;
  }

  async function getJSON(path) {
    const response = await request(path);
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return response.json();
  }

  async function postJSON(path, data, extraHeaders = {}) {
    const options = { method: "POST", headers: extraHeaders };
    if (data !== undefined) {
      options.body = JSON.stringify(data);
      options.headers = { ...extraHeaders, "Content-Type": "application/json" };
    }
    const response = await request(path, options);
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return response.json();
  }

  // ---------------------------------------------------------------------
  // 3. Notices and dialogs
  // ---------------------------------------------------------------------

  let noticeTimer = 0;
  function notice(text, kind = "info") {
    const box = $("notice");
    box.textContent = text;
    box.className = `notice notice-${kind}`;
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 10000 : 5000);
  }

  function reportError(error, what) {
    if (error instanceof Cancelled) return;
    notice(`${what}: ${error.message || error}`, "error");
  }

  let tokenPromise = null;

  /** Shows the token dialog (once, however many callers wait); resolves with the token. */
  function askToken(message, isError = Boolean(message)) {
    if (tokenPromise) return tokenPromise;
    const dialog = $("token-dialog"), input = $("token-input"), note = $("token-message");
    note.textContent = message ||
      "This needs the owner's API token. It is in the daemon's state folder, file api-token.";
    note.className = isError ? "error" : "muted";
    input.value = "";
    tokenPromise = new Promise((resolve, reject) => {
      dialog._settle = (value) => {
        dialog._settle = null;
        tokenPromise = null;
        if (dialog.open) dialog.close();
        if (value) resolve(value); else reject(new Cancelled("no token"));
      };
    });
    dialog.showModal();
    input.focus();
    return tokenPromise;
  }

  function setupTokenDialog() {
    const dialog = $("token-dialog"), input = $("token-input"), note = $("token-message");
    $("token-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) { input.focus(); return; }
      $("token-save").disabled = true;
      try {
        // Any request with a wrong token gets a 401: check it before keeping it.
        const response = await fetch("/api/version", { headers: { Authorization: "Bearer " + value },
          cache: "no-store" });
        if (response.status === 401) {
          note.textContent = "That is not the owner's token.";
          note.className = "error";
          input.select();
          return;
        }
        setToken(value);
        if (dialog._settle) dialog._settle(value); else dialog.close();
        notice("Token saved in this browser.");
      } catch (error) {
        note.textContent = "Could not check the token: " + error.message;
        note.className = "error";
      } finally {
        $("token-save").disabled = false;
      }
    });
    $("token-cancel").addEventListener("click", () => {
      if (dialog._settle) dialog._settle(null); else dialog.close();
    });
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      if (dialog._settle) dialog._settle(null); else dialog.close();
    });
    $("token-forget").addEventListener("click", () => {
      setToken("");
      notice("Token forgotten.");
      if (dialog._settle) dialog._settle(null); else dialog.close();
    });
    $("token-button").addEventListener("click", () => {
      askToken(token ? "A token is set. Enter another one, or forget it." : "", false).catch(() => {});
    });
  }

  /** The reject dialog; resolves with the reason, or null when cancelled. */
  function askReason(jobName) {
    const dialog = $("reason-dialog"), input = $("reason-input");
    $("reason-title").textContent = `Reject ${jobName}`;
    input.value = "";
    return new Promise((resolve) => {
      const finish = (value) => {
        $("reason-form").removeEventListener("submit", onSubmit);
        $("reason-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        resolve(value);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const reason = input.value.trim();
        if (!reason) { input.focus(); return; }
        finish(reason);
      };
      const onCancel = (event) => { event.preventDefault(); finish(null); };
      $("reason-form").addEventListener("submit", onSubmit);
      $("reason-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      input.focus();
    });
  }

  const ACTION_LABELS = { approve: "Approve", reject: "Reject", stop: "Stop", restart: "Run again" };
  const ACTION_DONE = { approve: "approved", reject: "rejected", stop: "stopped", restart: "started again" };

  /** approve, reject (asks why), stop, restart; returns the answer or null. */
  async function jobAction(job, action) {
    try {
      let body;
      if (action === "reject") {
        const reason = await askReason(job.name);
        if (reason == null) return null;
        body = { reason };
      }
      const answer = await postJSON(`/api/jobs/${enc(job.id)}/${action}`, body);
      const now = answer.status === ACTION_DONE[action] ? "" : ` (now ${answer.status})`;
      notice(`${job.name}: ${ACTION_DONE[action]}${now}.`, "good");
      return answer;
    } catch (error) {
      reportError(error, `${ACTION_LABELS[action]} ${job.name}`);
      return null;
    }
  }

  function actionButton(job, action, testid, onDone) {
    const button = el("button", {
      type: "button", class: `small action-${action}${action === "reject" || action === "stop" ? " danger" : ""}` +
        (action === "approve" ? " primary" : ""),
      data: { testid, action, "job-id": job.id }, text: ACTION_LABELS[action],
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      const answer = await jobAction(job, action);
      button.disabled = false;
      if (answer && onDone) onDone(answer);
    });
    return button;
  }

  // ---------------------------------------------------------------------
  // 4. Status header
  // ---------------------------------------------------------------------

  let daemonConfig = null;

  async function refreshStatus() {
    try {
      const status = await getJSON("/api/status");
      daemonConfig = status.config;
      setBadge($("status-state"), status.state);
      $("status-owner").textContent = status.owner;
      $("status-version").textContent = status.version;
      $("status-uptime").textContent = fmtUptime(status.uptime_seconds);
      $("status-uptime").title = "since " + fmtFullTime(status.started_at);
      const q = status.queue;
      $("status-queue").textContent = `${q.running} running · ${q.waiting} waiting · ${q.pending_review} to review`;
    } catch (error) {
      setBadge($("status-state"), "unreachable");
      $("status-state").className = "badge tone-bad";
    }
  }

  // ---------------------------------------------------------------------
  // 5. Stats and the outcomes chart
  // ---------------------------------------------------------------------

  let lastStats = null;

  async function refreshStats() {
    const stats = await getJSON("/api/v1/jobs/stats");
    lastStats = stats;
    $("stats-total").textContent = String(stats.total);
    $("stats-success-rate").textContent = stats.success_rate == null ? "–" : `${(stats.success_rate * 100).toFixed(1)} %`;
    $("stats-median").textContent = fmtDuration(stats.duration_ms.median);
    $("stats-p95").textContent = fmtDuration(stats.duration_ms.p95);
    renderLegend(stats);
    renderChart(stats.timeline);
    addStatusOptions(Object.keys(stats.by_status));
  }

  function chartStatuses(stats) {
    const seen = new Set(RUN_STATUSES.filter((s) => stats.by_status[s]));
    for (const bucket of stats.timeline.buckets) for (const s of Object.keys(bucket.counts)) seen.add(s);
    for (const s of Object.keys(stats.by_status)) seen.add(s);
    const known = RUN_STATUSES.filter((s) => seen.has(s));
    return known.concat([...seen].filter((s) => !RUN_STATUSES.includes(s)).sort());
  }

  function renderLegend(stats) {
    const items = chartStatuses(stats).map((status) => el("li", { data: { status } }, [
      el("span", { class: `swatch s-${status}` }),
      `${status.replace("_", " ")} `,
      el("strong", { text: String(stats.by_status[status] || 0) }),
    ]));
    if (!items.length) items.push(el("li", { class: "muted", text: "no run yet" }));
    $("stats-legend").replaceChildren(...items);
  }

  /** Stacked bars per hour by status, drawn with SVG DOM nodes. */
  function renderChart(timeline) {
    const box = $("stats-chart");
    if (!lastStats) return;
    const buckets = timeline.buckets;
    const width = Math.max(260, Math.floor(box.clientWidth || 600));
    const height = 150, left = 30, right = 6, top = 10, bottom = 22;
    const plotW = width - left - right, plotH = height - top - bottom;
    const totals = buckets.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0));
    const max = niceMax(Math.max(1, ...totals));
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": `Runs per hour over the last ${buckets.length} hours`, class: "chart-svg" });
    // Grid and y labels.
    for (const fraction of max >= 2 ? [0, 0.5, 1] : [0, 1]) {
      const y = top + plotH - fraction * plotH;
      root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
      const label = svg("text", { x: left - 4, y: y + 3.5, class: "axis", "text-anchor": "end" });
      label.textContent = String(Math.round(max * fraction));
      root.append(label);
    }
    const statuses = chartStatuses(lastStats);
    const slot = plotW / Math.max(1, buckets.length);
    const barW = Math.max(2, slot * 0.72);
    buckets.forEach((bucket, i) => {
      const x = left + i * slot + (slot - barW) / 2;
      const start = new Date(bucket.start);
      const hour = `${pad(start.getHours())}:00`;
      let y = top + plotH;
      const group = svg("g", { class: "bar", data: { start: bucket.start } });
      const parts = [];
      for (const status of statuses) {
        const count = bucket.counts[status] || 0;
        if (!count) continue;
        const h = (count / max) * plotH;
        y -= h;
        group.append(svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: barW.toFixed(1),
          height: Math.max(0.5, h).toFixed(1), class: `s-${status}` }));
        parts.push(`${status}: ${count}`);
      }
      // A transparent full-height target carries the tooltip.
      const hit = svg("rect", { x: (left + i * slot).toFixed(1), y: top, width: slot.toFixed(1), height: plotH,
        class: "hit" });
      const title = svg("title");
      title.textContent = `${hour}–${pad((start.getHours() + 1) % 24)}:00 · ` + (parts.length ? parts.join(", ") : "no run");
      hit.append(title);
      group.append(hit);
      root.append(group);
      const every = buckets.length > 12 && width < 500 ? 6 : 3;
      if (i % every === 0) {
        const label = svg("text", { x: (left + i * slot + slot / 2).toFixed(1), y: height - 6, class: "axis",
          "text-anchor": "middle" });
        label.textContent = hour;
        root.append(label);
      }
    });
    box.replaceChildren(root);
  }

  function niceMax(value) {
    const magnitude = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
      if (value <= step * magnitude && Number.isInteger(step * magnitude)) return step * magnitude;
    }
    return value;
  }

  // ---------------------------------------------------------------------
  // 6. Review queue and jobs in progress (from GET /api/jobs)
  // ---------------------------------------------------------------------

  const IN_PROGRESS = new Set(["received", "approved", "running", "queued"]);

  async function refreshJobs() {
    const { jobs } = await getJSON("/api/jobs");
    const pending = jobs.filter((job) => job.status === "pending" && job.actions.includes("approve"));
    const active = jobs.filter((job) => IN_PROGRESS.has(job.status) || job.live);
    renderReview(pending);
    renderActive(active);
  }

  /** Keeps the nodes of unchanged jobs (a click in flight is never lost). */
  function syncList(list, jobs, render) {
    const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
    const nodes = jobs.map((job) => {
      const key = `${job.id}|${job.status}|${job.actions.join(",")}`;
      return existing.get(key) || render(job);
    });
    nodes.forEach((node, i) => {
      const job = jobs[i];
      node.dataset.key = `${job.id}|${job.status}|${job.actions.join(",")}`;
    });
    if (nodes.length !== list.children.length || nodes.some((node, i) => list.children[i] !== node)) {
      list.replaceChildren(...nodes);
    }
  }

  function renderReview(jobs) {
    $("review-count").textContent = String(jobs.length);
    $("review-empty").hidden = jobs.length > 0;
    syncList($("review-list"), jobs, (job) => {
      const config = job.config || {};
      const files = (config.files || []).join(", ");
      return el("li", { class: "card", data: { testid: "review-item", "job-id": job.id, "job-name": job.name } }, [
        el("div", { class: "card-main" }, [
          el("a", { href: jobHref(job.id), class: "job-link", text: job.name }),
          el("span", { class: "muted", text: ` from ${job.submitter}` }),
        ]),
        el("div", { class: "muted small-text" }, [
          `received ${fmtTime(job.created_at)}`,
          config.type ? ` · ${config.type}` : "",
          files ? ` · ${files}` : "",
          job.fingerprint ? ` · ${job.fingerprint.slice(0, 12)}` : "",
        ]),
        el("div", { class: "actions" }, [
          actionButton(job, "approve", "review-approve", refreshOverviewNow),
          actionButton(job, "reject", "review-reject", refreshOverviewNow),
        ]),
      ]);
    });
  }

  function renderActive(jobs) {
    $("active-count").textContent = String(jobs.length);
    $("active-empty").hidden = jobs.length > 0;
    syncList($("active-list"), jobs, (job) => el("li", { data: { testid: "active-item", "job-id": job.id } }, [
      badge(job.status),
      el("a", { href: jobHref(job.id), class: "job-link", text: job.name }),
      el("span", { class: "muted", text: `${job.source === "api" ? "API" : "SyftBox"} · ${job.submitter}` }),
      el("span", { class: "muted", text: fmtTime(job.created_at) }),
    ]));
  }

  // ---------------------------------------------------------------------
  // 7. History
  // ---------------------------------------------------------------------

  const history = { status: "", source: "", q: "", sort: "finished_at", order: "desc", limit: 25, offset: 0,
    total: 0, signature: "" };

  function addStatusOptions(statuses) {
    const select = $("history-status");
    const have = new Set([...select.options].map((o) => o.value));
    for (const status of statuses) {
      if (!have.has(status)) select.append(el("option", { value: status, text: status.replace("_", " ") }));
    }
  }

  async function refreshHistory() {
    const params = new URLSearchParams({ sort: history.sort, order: history.order, limit: String(history.limit),
      offset: String(history.offset) });
    if (history.status) params.set("status", history.status);
    if (history.source) params.set("source", history.source);
    if (history.q) params.set("q", history.q);
    const page = await getJSON("/api/v1/jobs/history?" + params);
    if (page.runs.length === 0 && page.offset > 0 && page.total > 0) {
      // The page emptied (a cleanup): go back to the last one.
      history.offset = Math.max(0, Math.floor((page.total - 1) / history.limit) * history.limit);
      return refreshHistory();
    }
    history.total = page.total;
    renderHistory(page);
  }

  function renderHistory(page) {
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.runs.length;
    $("history-page-info").textContent = page.total ? `${first}–${last} of ${page.total}` : "0 runs";
    $("history-prev").disabled = page.offset === 0;
    $("history-next").disabled = last >= page.total;
    $("history-empty").hidden = page.runs.length > 0;
    for (const th of $("history-table").querySelectorAll("th[data-sort]")) {
      const sorted = th.dataset.sort === history.sort;
      if (sorted) th.setAttribute("aria-sort", history.order === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    $("history-sort").value = history.sort;
    $("history-order").textContent = history.order === "asc" ? "↑ asc" : "↓ desc";
    // Rebuild the rows only when something changed: the page keeps its scroll and focus.
    const signature = JSON.stringify(page.runs);
    if (signature === history.signature) return;
    history.signature = signature;
    $("history-body").replaceChildren(...page.runs.map(historyRow));
  }

  function historyRow(run) {
    const exit = run.limit_hit && run.limit_hit !== "none" ? `limit: ${run.limit_hit}`
      : run.exit_code == null ? (run.reason ? "–" : "–") : String(run.exit_code);
    return el("tr", { data: { testid: "history-row", "run-id": run.id, "job-id": run.job_id } }, [
      el("td", { "data-label": "Name" }, [el("span", {}, [
        el("a", { href: jobHref(run.job_id), class: "job-link", text: run.name }),
        el("span", { class: "source-tag", text: run.source === "api" ? "API" : "SyftBox" }),
      ])]),
      el("td", { "data-label": "Submitter", class: "break", text: run.submitter }),
      el("td", { "data-label": "Status" }, [badge(run.status)]),
      el("td", { "data-label": "Started", title: fmtFullTime(run.started_at), text: fmtTime(run.started_at) }),
      el("td", { "data-label": "Finished", title: fmtFullTime(run.finished_at), text: fmtTime(run.finished_at) }),
      el("td", { "data-label": "Duration", class: "num", text: fmtDuration(run.duration_ms) }),
      el("td", { "data-label": "Exit", class: "num", title: run.reason || null, text: exit }),
    ]);
  }

  function setupHistory() {
    const reload = () => { history.offset = 0; refreshHistory().catch((e) => reportError(e, "History")); };
    $("history-filters").addEventListener("submit", (event) => event.preventDefault());
    $("history-status").addEventListener("change", (e) => { history.status = e.target.value; reload(); });
    $("history-source").addEventListener("change", (e) => { history.source = e.target.value; reload(); });
    $("history-search").addEventListener("input", debounce((e) => { history.q = e.target.value.trim(); reload(); }, 300));
    $("history-sort").addEventListener("change", (e) => { history.sort = e.target.value; reload(); });
    $("history-order").addEventListener("click", () => {
      history.order = history.order === "asc" ? "desc" : "asc";
      reload();
    });
    for (const th of $("history-table").querySelectorAll("th[data-sort]")) {
      th.querySelector("button").addEventListener("click", () => {
        const key = th.dataset.sort;
        if (history.sort === key) history.order = history.order === "asc" ? "desc" : "asc";
        else { history.sort = key; history.order = ["name", "submitter", "status"].includes(key) ? "asc" : "desc"; }
        reload();
      });
    }
    const page = (delta) => {
      history.offset = Math.max(0, history.offset + delta * history.limit);
      refreshHistory().catch((e) => reportError(e, "History"));
    };
    $("history-prev").addEventListener("click", () => page(-1));
    $("history-next").addEventListener("click", () => page(1));
  }

  // ---------------------------------------------------------------------
  // 8. ANSI log renderer (SGR colours into styled spans; text only)
  // ---------------------------------------------------------------------

  const MAX_LOG_NODES = 20000;

  class AnsiLog {
    constructor(target) {
      this.target = target;
      this.reset();
    }

    reset() {
      this.target.replaceChildren();
      this.streams = {};
      this.trimmed = false;
    }

    state(stream) {
      return this.streams[stream] ||= { fg: null, bg: null, fgColor: null, bgColor: null, bold: false, dim: false,
        italic: false, underline: false, carry: "" };
    }

    write(stream, text) {
      const st = this.state(stream);
      text = st.carry + text;
      st.carry = "";
      // An escape sequence cut by the end of the chunk waits for the next.
      const cut = /\x1b(\[[0-9;?]*)?$/.exec(text);
      if (cut) { st.carry = cut[0]; text = text.slice(0, cut.index); }
      const pattern = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]?/g;
      let last = 0;
      for (let match; (match = pattern.exec(text));) {
        this.emit(stream, st, text.slice(last, match.index));
        if (match[2] === "m") this.sgr(st, match[1]);
        last = pattern.lastIndex;
      }
      this.emit(stream, st, text.slice(last));
    }

    sgr(st, params) {
      const codes = params === "" ? [0] : params.split(";").map((p) => (p === "" ? 0 : Number(p)));
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i];
        if (c === 0) Object.assign(st, { fg: null, bg: null, fgColor: null, bgColor: null, bold: false, dim: false,
          italic: false, underline: false });
        else if (c === 1) st.bold = true;
        else if (c === 2) st.dim = true;
        else if (c === 3) st.italic = true;
        else if (c === 4) st.underline = true;
        else if (c === 22) { st.bold = false; st.dim = false; }
        else if (c === 23) st.italic = false;
        else if (c === 24) st.underline = false;
        else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) { st.fg = c; st.fgColor = null; }
        else if (c === 39) { st.fg = null; st.fgColor = null; }
        else if ((c >= 40 && c <= 47) || (c >= 100 && c <= 107)) { st.bg = c; st.bgColor = null; }
        else if (c === 49) { st.bg = null; st.bgColor = null; }
        else if (c === 38 || c === 48) {
          let color = null;
          if (codes[i + 1] === 5 && i + 2 < codes.length) { color = xterm256(codes[i + 2]); i += 2; }
          else if (codes[i + 1] === 2 && i + 4 < codes.length) {
            const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.max(0, Math.min(255, v)));
            color = `rgb(${r}, ${g}, ${b})`;
            i += 4;
          }
          if (c === 38) { st.fg = null; st.fgColor = color; } else { st.bg = null; st.bgColor = color; }
        }
      }
    }

    emit(stream, st, text) {
      text = text.replace(/\r(?!\n)/g, "").replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, "");
      if (!text) return;
      const classes = [];
      if (stream === "stderr") classes.push("log-stderr");
      if (st.fg) classes.push(`ansi-fg-${st.fg}`);
      if (st.bg) classes.push(`ansi-bg-${st.bg}`);
      if (st.bold) classes.push("ansi-bold");
      if (st.dim) classes.push("ansi-dim");
      if (st.italic) classes.push("ansi-italic");
      if (st.underline) classes.push("ansi-underline");
      const className = classes.join(" ");
      const key = `${className}|${st.fgColor || ""}|${st.bgColor || ""}`;
      const lastNode = this.target.lastChild;
      if (key === "||") {
        // Plain text: a bare text node, merged with the one before.
        if (lastNode && lastNode.nodeType === Node.TEXT_NODE) lastNode.appendData(text);
        else this.target.append(document.createTextNode(text));
        return;
      }
      if (lastNode && lastNode._key === key) {
        lastNode.firstChild.appendData(text);
        return;
      }
      const span = document.createElement("span");
      if (className) span.className = className;
      if (st.fgColor) span.style.color = st.fgColor;
      if (st.bgColor) span.style.backgroundColor = st.bgColor;
      span.append(document.createTextNode(text));
      span._key = key;
      this.target.append(span);
      if (this.target.childNodes.length > MAX_LOG_NODES) this.trim();
    }

    trim() {
      for (let i = 0; i < MAX_LOG_NODES / 10; i++) this.target.firstChild.remove();
      if (!this.trimmed) {
        this.trimmed = true;
        notice("The log is long: its beginning is no longer shown here (see the plain text).");
      }
    }
  }

  function xterm256(n) {
    const base = ["#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
      "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"];
    if (n < 16) return base[Math.max(0, n)];
    if (n < 232) {
      const v = n - 16, steps = [0, 95, 135, 175, 215, 255];
      return `rgb(${steps[Math.floor(v / 36)]}, ${steps[Math.floor(v / 6) % 6]}, ${steps[v % 6]})`;
    }
    const grey = 8 + (Math.min(255, n) - 232) * 10;
    return `rgb(${grey}, ${grey}, ${grey})`;
  }

  // ---------------------------------------------------------------------
  // 9. Job page: details, actions, files, runs, live log (SSE)
  // ---------------------------------------------------------------------

  const view = {
    id: null, job: null, source: null, log: null, stick: true,
    // The run whose log the pane shows after an `end` ("" none yet; null: learn it at the next poll).
    endedRun: "", viewingRun: null, actionsKey: "", artifactsKey: "", runsKey: "", missing: false, checking: false,
  };

  function openJob(id) {
    if (view.id !== id) {
      closeStream();
      Object.assign(view, { id, job: null, endedRun: "", viewingRun: null, actionsKey: "", artifactsKey: "",
        runsKey: "", stick: true, missing: false, checking: false });
      $("job-name").textContent = id;
      $("job-id").textContent = id;
      setBadge($("job-status"), "");
      $("job-live").hidden = true;
      $("job-error").hidden = true;
      $("job-actions").replaceChildren();
      for (const dl of ["job-summary", "job-timings", "job-limits", "job-config"]) $(dl).replaceChildren();
      $("job-artifacts").replaceChildren();
      $("job-runs-body").replaceChildren();
      $("job-log-end").textContent = "";
      $("job-log-raw").href = `/jobs/${enc(id)}/logs`;
      view.log.reset();
      openStream();
    }
    return refreshJob();
  }

  function leaveJob() {
    closeStream();
    view.id = null;
  }

  async function refreshJob() {
    const id = view.id;
    if (!id) return;
    let envelope;
    try {
      envelope = await getJSON(`/jobs/${enc(id)}`);
    } catch (error) {
      if (id !== view.id) return;
      $("job-error").textContent = error.status === 404 ? "No such job (it may have been removed)." : error.message;
      $("job-error").hidden = false;
      if (error.status === 404) { view.missing = true; closeStream(); logState(""); }
      return;
    }
    if (id !== view.id) return;
    $("job-error").hidden = true;
    const job = envelope.job;
    view.job = job;
    renderJob(job, envelope.log_lines);
    // Follow a new run: the job started (again), or a run ended while no stream was open.
    const runKey = job.runs.length ? job.runs[0].id : "";
    if (view.endedRun === null) view.endedRun = runKey;
    if (!view.source && !view.checking && view.viewingRun == null && (job.live || runKey !== view.endedRun)) openStream();
  }

  function renderJob(job, logLines) {
    document.title = `${job.name} · syft-sandbox-run`;
    $("job-name").textContent = job.name;
    $("job-id").textContent = `${job.source === "api" ? "API job" : "SyftBox job"} ${job.id}`;
    setBadge($("job-status"), job.status);
    $("job-live").hidden = !job.live;

    const actionsKey = job.actions.join(",") + "|" + job.id;
    if (actionsKey !== view.actionsKey) {
      view.actionsKey = actionsKey;
      $("job-actions").replaceChildren(...["approve", "reject", "stop", "restart"]
        .filter((a) => job.actions.includes(a))
        .map((a) => Object.assign(actionButton(job, a, `job-action-${a}`, afterAction), { id: `job-action-${a}` })));
    }

    const result = job.result;
    fillFacts($("job-summary"), [
      ["status", job.status],
      ["source", job.source === "api" ? "submitted through the API" : "SyftBox"],
      ["submitter", job.submitter],
      ["path", job.path],
      ["created", fmtFullTime(job.created_at)],
      ["exit code", job.exit_code == null ? null : String(job.exit_code)],
      ["return code", job.return_code == null ? null : String(job.return_code)],
      ["limit hit", job.limit_hit, job.limit_hit && job.limit_hit !== "none" ? "hit" : null],
      ["reason", job.error],
      ["fingerprint", job.fingerprint && el("span", { class: "mono break", text: job.fingerprint })],
      ["log lines", logLines == null ? null : String(logLines)],
    ]);

    const earlier = result && !TERMINAL.has(job.status);
    fillFacts($("job-timings"), [
      ["note", earlier ? "the figures below are the previous run's" : null],
      ["started", job.started_at && fmtFullTime(job.started_at)],
      ["finished", job.finished_at && fmtFullTime(job.finished_at)],
      ["wall time", result ? fmtDuration(result.wall_ms) : job.runs[0] ? fmtDuration(job.runs[0].duration_ms) : null],
      ["CPU user", result && result.cpu_user_ms != null ? fmtDuration(result.cpu_user_ms) : null],
      ["CPU system", result && result.cpu_sys_ms != null ? fmtDuration(result.cpu_sys_ms) : null],
      ["max RSS", result && result.max_rss_kb != null ? fmtBytes(result.max_rss_kb * 1024) : null],
      ["memory peak", result && result.memory_peak_bytes != null ? fmtBytes(result.memory_peak_bytes) : null],
      ["stdout", result ? fmtBytes(result.stdout_bytes) : null],
      ["stderr", result ? fmtBytes(result.stderr_bytes) : null],
      ["output cut", result && result.output_truncated ? "yes: the log limit was reached" : null, "hit"],
      ["OOM killed", result && result.oom_killed ? "yes" : null, "hit"],
      ["outputs", result && result.outputs ? `${result.outputs.files} file${result.outputs.files === 1 ? "" : "s"}, ${fmtBytes(result.outputs.bytes)}` +
        (result.outputs.skipped_count ? `, ${result.outputs.skipped_count} skipped` : "") : null],
      ["warnings", result && result.warnings && result.warnings.length ? result.warnings.join("; ") : null],
    ]);

    fillFacts($("job-limits"), limitFacts(job));
    fillFacts($("job-config"), configFacts(job));

    const artifactsKey = JSON.stringify(job.artifacts);
    if (artifactsKey !== view.artifactsKey) {
      view.artifactsKey = artifactsKey;
      $("job-artifacts-empty").hidden = job.artifacts.length > 0;
      $("job-artifacts").replaceChildren(...job.artifacts.map((file) => {
        const href = `/jobs/${enc(job.id)}/artifacts/` + file.path.split("/").map(enc).join("/");
        return el("li", {}, [
          el("a", { href, download: file.path.split("/").pop(), class: "mono break",
            data: { testid: "artifact-link", path: file.path }, text: file.path }),
          el("span", { class: "muted", text: fmtBytes(file.size) }),
        ]);
      }));
    }

    const runsKey = JSON.stringify(job.runs);
    if (runsKey !== view.runsKey) {
      view.runsKey = runsKey;
      $("job-runs-empty").hidden = job.runs.length > 0;
      $("job-runs").hidden = job.runs.length === 0;
      $("job-runs-body").replaceChildren(...job.runs.map((run) => el("tr", { data: { testid: "run-row", "run-id": run.id } }, [
        el("td", { "data-label": "Run", class: "mono", title: run.id, text: run.id.slice(0, 8) }),
        el("td", { "data-label": "Status" }, [badge(run.status)]),
        el("td", { "data-label": "Started", text: fmtTime(run.started_at), title: fmtFullTime(run.started_at) }),
        el("td", { "data-label": "Duration", class: "num", text: fmtDuration(run.duration_ms) }),
        el("td", { "data-label": "Exit", class: "num", text: run.exit_code == null ? "–" : String(run.exit_code) }),
        el("td", { "data-label": "Limit hit", text: run.limit_hit || "–" }),
        el("td", { "data-label": "Logs" }, [el("button", { type: "button", class: "small",
          data: { testid: "run-logs" }, text: "show", onclick: () => showRunLogs(run) })]),
      ])));
    }
  }

  function limitFacts(job) {
    const result = job.result;
    if (result && result.limits) {
      const l = result.limits;
      const hit = job.limit_hit || result.limit_hit;
      return [
        ["limit hit", hit || "none", hit && hit !== "none" ? "hit" : null],
        ["wall time", l.timeout_seconds == null ? "none" : `${l.timeout_seconds} s`, hit === "timeout" ? "hit" : null],
        ["CPU time", l.cpu_time_seconds == null ? "none" : `${l.cpu_time_seconds} s`, hit === "cpu_time" ? "hit" : null],
        ["memory", l.memory_bytes == null ? "none" : fmtBytes(l.memory_bytes), hit === "memory" ? "hit" : null],
        ["processes", l.processes == null ? "none" : String(l.processes), hit === "pids" ? "hit" : null],
        ["open files", l.open_files == null ? null : String(l.open_files)],
        ["file size", l.file_size_bytes == null ? "none" : fmtBytes(l.file_size_bytes)],
        ["log output", l.output_bytes == null ? null : fmtBytes(l.output_bytes), hit === "output" ? "hit" : null],
        ["output files", l.outputs_bytes == null ? null : fmtBytes(l.outputs_bytes), hit === "outputs_size" ? "hit" : null],
        ["/tmp", l.tmp_bytes == null ? null : fmtBytes(l.tmp_bytes)],
        ["network", result.network],
        ["enforced by", l.enforcement],
      ];
    }
    // Not run yet: what the spec asks, else the daemon's defaults.
    const spec = job.spec || {}, config = daemonConfig || {};
    return [
      ["wall time", spec.timeout_sec ? `${spec.timeout_sec} s` :
        config.timeout_seconds != null ? `${config.timeout_seconds} s (daemon)` : null],
      ["memory", spec.mem_limit_mb ? `${spec.mem_limit_mb} MiB` :
        config.memory_bytes != null ? `${fmtBytes(config.memory_bytes)} (daemon)` : null],
      ["processes", spec.pids_limit ? String(spec.pids_limit) :
        config.processes != null ? `${config.processes} (daemon)` : null],
      ["network", spec.net_policy || (config.network ? `${config.network} (daemon)` : null)],
    ];
  }

  function configFacts(job) {
    const list = (values) => (values && values.length ? values.join(", ") : null);
    if (job.spec) {
      const s = job.spec;
      const env = Object.entries(s.env || {}).map(([k, v]) => `${k}=${v}`);
      return [
        ["entry", el("span", { class: "mono", text: s.entry })],
        ["arguments", s.args && s.args.length ? el("span", { class: "mono break", text: s.args.join(" ") }) : null],
        ["runtime", s.runtime],
        ["timeout", s.timeout_sec != null ? `${s.timeout_sec} s` : null],
        ["network", s.net_policy],
        ["memory", s.mem_limit_mb != null ? `${s.mem_limit_mb} MiB` : null],
        ["processes", s.pids_limit != null ? String(s.pids_limit) : null],
        ["environment", env.length ? el("span", { class: "mono break", text: env.join("\n") }) : null],
      ];
    }
    const c = job.config || {}, st = job.state || {};
    const datasets = c.datasets ? Object.entries(c.datasets).map(([owner, names]) => `${owner}: ${names.join(", ")}`) : [];
    return [
      ["type", c.type],
      ["job type", c.job_type],
      ["entrypoint", c.entrypoint],
      ["files", list(c.files)],
      ["dependencies", list(c.dependencies)],
      ["datasets", list(datasets)],
      ["submitted", c.submitted_at && fmtFullTime(c.submitted_at)],
      ["received", st.received_at && fmtFullTime(st.received_at)],
      ["approved", st.approved_at ? `${fmtFullTime(st.approved_at)} by ${st.approved_by || "?"}` +
        (st.approval_method ? ` (${st.approval_method})` : "") : null],
      ["rejected", st.rejected_at ? `${fmtFullTime(st.rejected_at)} by ${st.rejected_by || "?"}` : null],
      ["review reason", st.review_reason],
      ["completed", st.completed_at && fmtFullTime(st.completed_at)],
    ];
  }

  function afterAction() {
    // The stream (if open) ends by itself on a stop; the poll reopens it when a new run starts.
    view.viewingRun = null;
    refreshJob();
  }

  // -- the live log -------------------------------------------------------

  function closeStream() {
    if (view.source) { view.source.close(); view.source = null; }
  }

  function logState(text) { $("job-log-state").textContent = text; }

  function openStream() {
    closeStream();
    const id = view.id;
    view.viewingRun = null;
    view.log.reset();
    view.stick = true;
    $("job-log-follow").hidden = true;
    $("job-log-end").textContent = "";
    $("job-log-end").className = "";
    logState("connecting…");
    let received = false;
    const source = new EventSource(`/jobs/${enc(id)}/logs/stream`);
    view.source = source;
    source.onopen = () => { if (view.source === source) logState("following"); };
    source.onmessage = (event) => {
      if (view.source !== source) return;
      received = true;
      const chunk = JSON.parse(event.data);
      view.log.write(chunk.stream, chunk.text);
      scrollLog();
    };
    source.addEventListener("end", (event) => {
      if (view.source !== source) return;
      received = true;
      source.close();
      view.source = null;
      view.endedRun = null;
      showEnd(JSON.parse(event.data));
      refreshJob();
    });
    source.onerror = () => {
      if (view.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        view.source = null;
        logState("not connected");
        if (!received && !view.missing) checkStreamAccess(id);
      } else {
        logState("reconnecting…");
      }
    };
  }

  function showEnd(end) {
    const box = $("job-log-end");
    if (!TERMINAL.has(end.status)) {
      logState(end.status ? `${end.status}: waiting for the job to start` : "waiting");
      return;
    }
    logState("ended");
    const parts = [`ended: ${end.status}`];
    if (end.exit_code != null) parts.push(`exit code ${end.exit_code}`);
    if (end.limit_hit && end.limit_hit !== "none") parts.push(`limit hit: ${end.limit_hit}`);
    if (end.reason) parts.push(end.reason);
    box.textContent = parts.join(" · ");
    box.className = `badge tone-${TONES[end.status] || "neutral"}`;
    box.setAttribute("data-status", end.status);
    if (view.job && view.job.status !== end.status) setBadge($("job-status"), end.status);
  }

  /** EventSource cannot tell a 401: ask with fetch (which asks for the token), then reopen. */
  async function checkStreamAccess(id) {
    const controller = new AbortController();
    const before = token;
    view.checking = true;
    try {
      const response = await request(`/jobs/${enc(id)}/logs?stream=stderr`, { signal: controller.signal });
      controller.abort();
      if (!response.ok) { view.checking = false; return; }
      // A token just entered: at once; otherwise the stream failed for another reason: wait a little.
      setTimeout(() => {
        view.checking = false;
        if (view.id === id && !view.source) openStream();
      }, token !== before ? 0 : 2000);
    } catch (error) {
      view.checking = false;
      reportError(error, "Log");
    }
  }

  async function showRunLogs(run) {
    try {
      const logs = await getJSON(`/api/v1/jobs/history/${enc(run.id)}/logs`);
      closeStream();
      view.viewingRun = run.id;
      view.log.reset();
      view.log.write("stdout", logs.stdout);
      view.log.write("stderr", logs.stderr);
      logState(`run ${run.id.slice(0, 8)} (saved logs: stdout, then stderr)`);
      const box = $("job-log-end");
      box.replaceChildren(el("button", { type: "button", class: "small", data: { testid: "log-latest" },
        text: "back to the latest run", onclick: () => { view.endedRun = ""; openStream(); } }));
      box.className = "";
    } catch (error) {
      reportError(error, "Logs of the run");
    }
  }

  function scrollLog() {
    const pane = $("job-log");
    if (view.stick) pane.scrollTop = pane.scrollHeight;
  }

  function setupLog() {
    const pane = $("job-log");
    view.log = new AnsiLog(pane);
    pane.addEventListener("scroll", () => {
      view.stick = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 24;
      $("job-log-follow").hidden = view.stick;
    });
    $("job-log-follow").addEventListener("click", () => {
      view.stick = true;
      scrollLog();
      $("job-log-follow").hidden = true;
    });
    $("job-log-wrap").addEventListener("change", (e) => pane.classList.toggle("wrap", e.target.checked));
  }

  // ---------------------------------------------------------------------
  // 10. Submit form (POST /jobs, multipart)
  // ---------------------------------------------------------------------

  function setupSubmit() {
    const form = $("submit-form");
    const fail = (message) => {
      $("submit-error").textContent = message;
      $("submit-error").hidden = false;
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      $("submit-error").hidden = true;
      const entry = $("submit-entry").value.trim();
      if (!entry) return fail("Say which file to run (the entry).");
      const spec = { entry, args: lines($("submit-args").value), net_policy: $("submit-net").value, env: {} };
      const name = $("submit-name").value.trim();
      if (name) spec.name = name;
      const timeout = $("submit-timeout").value.trim();
      if (timeout) {
        if (!/^\d+$/.test(timeout) || Number(timeout) < 1) return fail("The timeout is a whole number of seconds.");
        spec.timeout_sec = Number(timeout);
      }
      for (const line of lines($("submit-env").value)) {
        const at = line.indexOf("=");
        if (at < 1) return fail(`Environment: "${line}" is not NAME=value.`);
        spec.env[line.slice(0, at).trim()] = line.slice(at + 1);
      }
      const body = new FormData();
      body.append("spec", JSON.stringify(spec));
      const codeFiles = [...$("submit-code-files").files];
      for (const file of codeFiles) body.append("code_files", file, file.name);
      const pasted = $("submit-code-text").value;
      if (pasted.trim() && !codeFiles.some((file) => file.name === entry)) {
        body.append("code_files", new Blob([pasted], { type: "text/plain" }), entry);
      } else if (!codeFiles.length) {
        return fail("Choose the code files, or paste the entry file's code.");
      }
      for (const file of $("submit-input-files").files) body.append("input_files", file, file.name);

      const button = $("submit-button");
      button.disabled = true;
      button.textContent = "Sending…";
      try {
        const response = await request("/jobs", { method: "POST", body });
        if (response.status !== 201) return fail(await errorText(response));
        const answer = await response.json();
        $("submit-code-files").value = "";
        $("submit-input-files").value = "";
        notice(`Job ${answer.job_id} ${answer.status}.`, "good");
        location.hash = jobHref(answer.job_id);
      } catch (error) {
        if (!(error instanceof Cancelled)) fail(error.message);
      } finally {
        button.disabled = false;
        button.textContent = "Run it";
      }
    });
  }

  /** One item per line; trailing empty lines dropped. */
  function lines(text) {
    const items = text.replace(/\r/g, "").split("\n");
    while (items.length && items[items.length - 1].trim() === "") items.pop();
    return items;
  }

  // ---------------------------------------------------------------------
  // 11. Router and refresh loop
  // ---------------------------------------------------------------------

  let current = "";
  let lastOverview = 0, lastJobPoll = 0, lastStatus = 0;
  const busy = new Set();

  /** Runs `task` unless the same one is still in flight. */
  async function once(name, task) {
    if (busy.has(name)) return;
    busy.add(name);
    try { await task(); } catch (error) { reportError(error, name); } finally { busy.delete(name); }
  }

  function refreshOverview(withHistory = true) {
    lastOverview = Date.now();
    once("Stats", refreshStats);
    once("Jobs", refreshJobs);
    if (withHistory) once("History", refreshHistory);
  }

  function refreshOverviewNow() {
    refreshOverview(true);
    once("Status", refreshStatus);
  }

  function route() {
    const hash = location.hash || "#/";
    let name = "missing", jobId = null;
    if (hash === "#/" || hash === "#" || hash === "") name = "overview";
    else if (hash === "#/submit") name = "submit";
    else {
      const match = /^#\/jobs\/([^/]+)$/.exec(hash);
      if (match) { name = "job"; jobId = decodeURIComponent(match[1]); }
    }
    if (current === "job" && (name !== "job" || jobId !== view.id)) leaveJob();
    current = name;
    for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== `view-${name}`;
    $("nav-overview").toggleAttribute("aria-current", name === "overview");
    $("nav-submit").toggleAttribute("aria-current", name === "submit");
    if (name === "overview") {
      document.title = "syft-sandbox-run";
      refreshOverview(true);
    } else if (name === "submit") {
      document.title = "Submit a job · syft-sandbox-run";
      $("submit-entry").focus();
    } else if (name === "job") {
      lastJobPoll = Date.now();
      openJob(jobId);
    }
    window.scrollTo(0, 0);
  }

  function tick() {
    if (document.hidden) return;
    const now = Date.now();
    if (now - lastStatus >= 5000) { lastStatus = now; once("Status", refreshStatus); }
    if (current === "overview" && now - lastOverview >= 5000) refreshOverview($("history-autorefresh").checked);
    if (current === "job" && view.id && !view.missing) {
      const active = !view.job || view.job.live || !TERMINAL.has(view.job.status) || view.source;
      if (now - lastJobPoll >= (active ? 1000 : 5000)) { lastJobPoll = now; once("Job", refreshJob); }
    }
  }

  function start() {
    setToken(token);
    setupTokenDialog();
    setupHistory();
    setupLog();
    setupSubmit();
    window.addEventListener("hashchange", route);
    window.addEventListener("resize", debounce(() => {
      if (current === "overview" && lastStats) renderChart(lastStats.timeline);
    }, 150));
    document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
    lastStatus = Date.now();
    once("Status", refreshStatus);
    route();
    setInterval(tick, 500);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
