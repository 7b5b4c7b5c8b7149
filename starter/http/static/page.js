// The deployments page: the list and one deployment, kept live by the API's event streams.
// Every value from the API is set as text, never as HTML.
"use strict";

const ENDED = new Set(["active", "failed", "cancelled", "superseded"]);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

// Every moment in one time zone, UTC, with its date: "2026-11-27 11:03:42 UTC".
function when(iso) {
  if (!iso) return "";
  return `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(1)} s`;
  return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

function bar(progress, status) {
  const fill = el("div", { class: `fill ${status}` });
  fill.style.width = `${progress}%`;
  return el("div", { class: "bar" }, fill);
}

// A phase that outlives its recent median has no estimate left: it takes longer than usual.
function eta(deployment) {
  if (!deployment.eta) return "";
  const left = deployment.eta.remainingSeconds;
  return left < 1 ? "longer than usual" : `about ${seconds(left)} left`;
}

// A write session's CSRF token, from the cookie the server set beside it; none in a
// read-only session, whose page shows no actions.
function csrf() {
  const found = document.cookie.match(/(?:^|; )slipway_csrf=([^;]+)/);
  return found ? decodeURIComponent(found[1]) : null;
}

// POST an action with the CSRF token; says what came of it, and returns the answer's body
// when it was accepted.
async function act(path, body) {
  const headers = { "X-CSRF-Token": csrf() || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method: "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await answer.json().catch(() => ({}));
  const result = document.getElementById("action-result");
  result.textContent = answer.ok ? data.message : data.detail || `refused (${answer.status})`;
  result.className = `action-result${answer.ok ? "" : " failed"}`;
  return answer.ok ? data : null;
}

function connection(source) {
  const label = document.getElementById("connection");
  source.onopen = () => { label.textContent = "live"; };
  source.onerror = () => { label.textContent = "reconnecting…"; };
}

function listPage() {
  const rows = new Map();
  const body = document.querySelector("#deployments tbody");

  function render() {
    const sorted = [...rows.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    body.replaceChildren(
      ...sorted.map((d) =>
        el(
          "tr",
          { "data-id": d.id, "data-status": d.status },
          el("td", {}, el("a", { href: `/projects/${d.project}` }, d.project)),
          el("td", {}, el("a", { href: `/deployments/${d.id}` }, d.id.slice(0, 8))),
          el("td", {}, el("span", { class: `status ${d.status}` }, d.status)),
          el("td", {}, d.phase),
          el("td", { class: "wide" }, bar(d.progress, d.status), el("span", { class: "pct" }, `${d.progress}%`)),
          el("td", {}, eta(d)),
          el("td", {}, when(d.updatedAt)),
        ),
      ),
    );
    document.getElementById("empty").hidden = rows.size > 0;
  }

  const source = new EventSource("/api/events");
  connection(source);
  source.addEventListener("deployment", (event) => {
    const deployment = JSON.parse(event.data);
    rows.set(deployment.id, deployment);
    render();
  });
}

function deploymentPage() {
  const id = location.pathname.split("/").pop();
  let spans = [];
  let ended = false;

  function summary(d) {
    document.title = `Slipway · ${d.project} · ${d.id.slice(0, 8)}`;
    document.getElementById("title").replaceChildren(
      el("a", { href: `/projects/${d.project}` }, d.project),
      ` · ${d.id}`,
    );
    actions(d);
    const status = document.getElementById("status");
    status.textContent = d.status;
    status.className = `status ${d.status}`;
    ended = ENDED.has(d.status);
    const reached = d.metadata.failedPhase && d.phase === "failed" ? d.metadata.failedPhase : d.phase;
    document.getElementById("phase").textContent = `${reached} (${d.progress}%)`;
    document.getElementById("eta").textContent = eta(d);
    const fill = document.getElementById("fill");
    fill.style.width = `${d.progress}%`;
    fill.className = `fill ${d.status}`;
    document.getElementById("temporal").href = d.temporalUrl;
    const facts = [
      ["source", d.source],
      ["created", when(d.createdAt)],
      ["updated", when(d.updatedAt)],
      ["url", d.metadata.url],
      ["error", d.metadata.error],
      ["failed in", d.metadata.failedPhase],
    ].filter(([, value]) => value);
    document.getElementById("facts").replaceChildren(
      ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]),
    );
  }

  function timeline() {
    // The lanes run to now while the deployment runs, and to its end once it has ended.
    const now = Date.now();
    const start = spans.length ? Date.parse(spans[0].startedAt) : now;
    const last = Math.max(start, ...spans.map((s) => Date.parse(s.endedAt || s.startedAt)));
    const end = ended ? last : Math.max(now, last);
    const total = Math.max(end - start, 1);
    document.querySelector("#timeline tbody").replaceChildren(
      ...spans.map((s, i) => {
        const running = !ended && !s.endedAt && i === spans.length - 1 && !ENDED.has(s.phase);
        const from = Date.parse(s.startedAt);
        const to = s.endedAt ? Date.parse(s.endedAt) : running ? now : from;
        const block = el("div", { class: `span ${s.phase}${s.skipped ? " skipped" : ""}` });
        block.style.marginLeft = `${((from - start) / total) * 100}%`;
        block.style.width = `${Math.max(((to - from) / total) * 100, 0.5)}%`;
        return el(
          "tr",
          { "data-phase": s.phase },
          el("td", {}, s.phase + (s.skipped ? " (skipped)" : "")),
          el("td", {}, when(s.startedAt)),
          el("td", {}, running ? "running" : when(s.endedAt)),
          el("td", {}, running ? seconds((now - from) / 1000) : seconds(s.durationSeconds)),
          el("td", { class: "wide" }, el("div", { class: "lane" }, block)),
        );
      }),
    );
  }

  async function refreshTimeline() {
    const answer = await fetch(`/api/deployments/${id}/timeline`);
    if (answer.ok) {
      spans = await answer.json();
      timeline();
    }
  }

  // New lines keep the box at its end, unless the reader has scrolled up to read.
  function logLine(entry) {
    const box = document.getElementById("log");
    const following = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    const stamp = new Date(entry.timestamp).toISOString();
    const line = el(
      "div",
      { class: `line ${entry.level}` },
      el("span", { class: "muted" }, `${stamp.slice(0, 10)} ${stamp.slice(11, 23)} `),
      el("span", { class: "phase" }, `${entry.phase.padEnd(18)} `),
      entry.message,
    );
    box.append(line);
    if (following) box.scrollTop = box.scrollHeight;
  }

  // What a person may do with the deployment now; nothing in a read-only session.
  function actions(d) {
    const writable = csrf() !== null;
    const running = !ENDED.has(d.status);
    document.getElementById("cancel").hidden = !writable || !running;
    document.getElementById("resume").hidden =
      !writable || !(d.status === "failed" || d.status === "cancelled");
    document.getElementById("redeploy").hidden =
      !writable || running || d.metadata.mode === "rollback" || !d.metadata.uploadId;
  }

  function wire() {
    document.getElementById("cancel").onclick = () => act(`/api/deployments/${id}/cancel`);
    document.getElementById("resume").onclick = async () => {
      if (await act(`/api/deployments/${id}/resume`)) location.reload();
    };
    document.getElementById("redeploy").onclick = async () => {
      const started = await act(`/api/deployments/${id}/redeploy`);
      if (started) location.assign(`/deployments/${started.id}`);
    };
  }

  async function start() {
    wire();
    const answer = await fetch(`/api/deployments/${id}`);
    if (!answer.ok) {
      // Nothing to show: no bar, no timeline, no log and no link to a workflow.
      document.getElementById("title").textContent = `No deployment ${id} is recorded`;
      document.getElementById("connection").textContent = "";
      for (const section of document.querySelectorAll("main section")) section.hidden = true;
      document.body.dataset.missing = "true";
      return;
    }
    summary(await answer.json());
    await refreshTimeline();
    const source = new EventSource(`/api/deployments/${id}/events`);
    connection(source);
    source.addEventListener("state", (event) => {
      summary(JSON.parse(event.data));
      refreshTimeline();
    });
    source.addEventListener("log", (event) => logLine(JSON.parse(event.data)));
    source.addEventListener("end", async (event) => {
      source.close();
      summary(JSON.parse(event.data));
      await refreshTimeline();
      document.getElementById("connection").textContent = "ended";
      document.body.dataset.ended = "true";
    });
    setInterval(timeline, 1000);
  }

  start();
}

function projectPage() {
  const name = location.pathname.split("/").pop();

  function facts(summary, serving) {
    const url = serving && serving.metadata.url;
    const rows = [
      ["live", url ? el("a", { id: "live", href: url, target: "_blank", rel: "noopener" }, url) : "not serving"],
      ["serving", serving ? el("a", { href: `/deployments/${serving.id}` }, serving.id.slice(0, 8)) : "-"],
      ["health", summary ? `${summary.health.status}${summary.health.detail ? ` (${summary.health.detail})` : ""}` : "unknown"],
      ["last check", summary && summary.health.lastCheck ? when(summary.health.lastCheck) : "-"],
      ["deployments", summary ? String(summary.deployments) : "0"],
    ];
    document.getElementById("facts").replaceChildren(
      ...rows.flatMap(([key, value]) => [el("dt", {}, key), el("dd", {}, value)]),
    );
  }

  function history(deployments, serving) {
    const writable = csrf() !== null;
    const servingRelease = serving ? serving.metadata.release || serving.id : null;
    document.querySelector("#history tbody").replaceChildren(
      ...deployments.map((d) => {
        const release = d.metadata.release || d.id;
        const earlier = d.status === "active" && release !== servingRelease;
        const button = el("button", { type: "button", class: "rollback" }, "Roll back to this");
        button.onclick = async () => {
          button.disabled = true;
          const started = await act(`/api/projects/${name}/rollback`, { to: d.id });
          if (started) location.assign(`/deployments/${started.id}`);
          else button.disabled = false;
        };
        return el(
          "tr",
          { "data-id": d.id, "data-status": d.status },
          el("td", {}, el("a", { href: `/deployments/${d.id}` }, d.id.slice(0, 8))),
          el("td", {}, el("span", { class: `status ${d.status}` }, d.status)),
          el("td", {}, `${d.phase === "failed" && d.metadata.failedPhase ? d.metadata.failedPhase : d.phase} (${d.progress}%)`),
          el("td", {}, when(d.createdAt)),
          el("td", {}, d.source),
          el("td", {}, writable && earlier ? button : ""),
        );
      }),
    );
  }

  async function start() {
    document.title = `Slipway · ${name}`;
    document.getElementById("title").textContent = name;
    document.getElementById("mode").textContent = csrf() === null ? "read-only" : "";
    const [projects, deployments, domains] = await Promise.all(
      [
        "/api/projects",
        `/api/deployments?project=${name}&limit=100`,
        `/api/projects/${name}/domains`,
      ].map(async (path) => {
        const answer = await fetch(path);
        return answer.ok ? answer.json() : [];
      }),
    );
    const summary = projects.find((p) => p.name === name);
    if (!summary && deployments.length === 0) {
      document.getElementById("title").textContent = `No project ${name} is recorded`;
      for (const section of document.querySelectorAll("main section")) section.hidden = true;
      document.body.dataset.missing = "true";
      return;
    }
    const serving = summary && summary.serving ? deployments.find((d) => d.id === summary.serving) : null;
    facts(summary, serving);
    document.getElementById("domains").replaceChildren(
      ...(domains.length
        ? domains.map((d) => el("li", {}, el("a", { href: `https://${d.name}/`, target: "_blank", rel: "noopener" }, d.unicodeName), ` · certificate ${d.certificate.state}`))
        : [el("li", { class: "muted" }, "no domains of its own")]),
    );
    history(deployments, serving);
    document.body.dataset.loaded = "true";
  }

  start();
}

const PAGES = { list: listPage, deployment: deploymentPage, project: projectPage };
PAGES[document.body.dataset.page]();
