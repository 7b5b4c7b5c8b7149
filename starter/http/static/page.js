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

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
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

function eta(deployment) {
  return deployment.eta ? `about ${seconds(deployment.eta.remainingSeconds)} left` : "";
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
          el("td", {}, d.project),
          el("td", {}, el("a", { href: `/deployments/${d.id}` }, d.id.slice(0, 8))),
          el("td", {}, el("span", { class: `status ${d.status}` }, d.status)),
          el("td", {}, d.phase),
          el("td", { class: "wide" }, bar(d.progress, d.status), el("span", { class: "pct" }, `${d.progress}%`)),
          el("td", {}, eta(d)),
          el("td", {}, time(d.updatedAt)),
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

  function summary(d) {
    document.title = `Slipway · ${d.project} · ${d.id.slice(0, 8)}`;
    document.getElementById("title").textContent = `${d.project} · ${d.id}`;
    const status = document.getElementById("status");
    status.textContent = d.status;
    status.className = `status ${d.status}`;
    document.getElementById("phase").textContent = `${d.phase} (${d.progress}%)`;
    document.getElementById("eta").textContent = eta(d);
    const fill = document.getElementById("fill");
    fill.style.width = `${d.progress}%`;
    fill.className = `fill ${d.status}`;
    document.getElementById("temporal").href = d.temporalUrl;
    const facts = [
      ["source", d.source],
      ["created", new Date(d.createdAt).toLocaleString()],
      ["updated", new Date(d.updatedAt).toLocaleString()],
      ["url", d.metadata.url],
      ["error", d.metadata.error],
      ["failed in", d.metadata.failedPhase],
    ].filter(([, value]) => value);
    document.getElementById("facts").replaceChildren(
      ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]),
    );
  }

  function timeline() {
    const now = Date.now();
    const start = spans.length ? Date.parse(spans[0].startedAt) : now;
    const end = Math.max(now, ...spans.map((s) => Date.parse(s.endedAt || s.startedAt)));
    const total = Math.max(end - start, 1);
    document.querySelector("#timeline tbody").replaceChildren(
      ...spans.map((s, i) => {
        const running = !s.endedAt && i === spans.length - 1 && !ENDED.has(s.phase);
        const from = Date.parse(s.startedAt);
        const to = s.endedAt ? Date.parse(s.endedAt) : running ? now : from;
        const block = el("div", { class: `span ${s.phase}${s.skipped ? " skipped" : ""}` });
        block.style.marginLeft = `${((from - start) / total) * 100}%`;
        block.style.width = `${Math.max(((to - from) / total) * 100, 0.5)}%`;
        return el(
          "tr",
          { "data-phase": s.phase },
          el("td", {}, s.phase + (s.skipped ? " (skipped)" : "")),
          el("td", {}, time(s.startedAt)),
          el("td", {}, running ? "running" : time(s.endedAt)),
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

  function logLine(entry) {
    const line = el(
      "div",
      { class: `line ${entry.level}` },
      el("span", { class: "muted" }, `${new Date(entry.timestamp).toISOString().slice(11, 23)} `),
      el("span", { class: "phase" }, `${entry.phase.padEnd(18)} `),
      entry.message,
    );
    document.getElementById("log").append(line);
  }

  async function start() {
    const answer = await fetch(`/api/deployments/${id}`);
    if (!answer.ok) {
      document.getElementById("title").textContent = `No deployment ${id} is recorded`;
      document.getElementById("connection").textContent = "";
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

if (document.body.dataset.page === "list") listPage();
else deploymentPage();
