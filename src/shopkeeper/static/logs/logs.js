// The logs UI's behaviour: the histogram (uPlot; click a bar to zoom), label suggestions in the
// query box, and the live tail over Loki's WebSocket. Plain script, no build step.
(function () {
  "use strict";

  const NS_PER_MS = 1000000n;
  const pad = (n, w = 2) => String(n).padStart(w, "0");

  function utcInput(seconds) {
    const d = new Date(seconds * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
      `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }

  function utcTime(ns) {
    const ms = Number(BigInt(ns) / NS_PER_MS);
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
  }

  // -- histogram -------------------------------------------------------------------------------

  let chart = null;

  function drawHistogram() {
    const results = document.querySelector(".results[data-histogram]");
    const target = document.getElementById("histogram");
    if (chart) { chart.destroy(); chart = null; }
    if (!results || !target || typeof uPlot === "undefined") return;
    const data = JSON.parse(results.dataset.histogram);
    if (data.error) return;
    const step = data.step;
    const xs = data.points.map((p) => p[0] - step / 2);
    const ys = data.points.map((p) => p[1]);
    const options = {
      width: Math.max(target.clientWidth - 12, 300),
      height: 140,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [{ stroke: "#6b7385", grid: { show: false } }, { stroke: "#6b7385", size: 44 }],
      series: [{}, {
        label: "lines", fill: "rgba(49, 87, 213, 0.55)", stroke: "#3157d5", width: 1,
        paths: uPlot.paths.bars({ size: [0.9, 64] }), points: { show: false },
      }],
    };
    chart = new uPlot(options, [xs, ys], target);
    chart.over.addEventListener("click", () => {
      const index = chart.cursor.idx;
      if (index == null || !ys[index]) return;
      zoomTo(xs[index] - step / 2, xs[index] + step / 2);
    });
  }

  function zoomTo(fromSeconds, toSeconds) {
    const form = document.getElementById("search-form");
    form.querySelector("[name=from]").value = utcInput(Math.floor(fromSeconds));
    form.querySelector("[name=to]").value = utcInput(Math.ceil(toSeconds));
    htmx.trigger(form, "submit");
  }

  // -- label suggestions -----------------------------------------------------------------------

  const cache = new Map();
  async function fetchJson(url) {
    if (!cache.has(url)) {
      cache.set(url, fetch(url, { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : [])));
    }
    return cache.get(url);
  }

  function setupSuggestions() {
    const box = document.getElementById("query");
    const list = document.getElementById("suggestions");
    if (!box || !list) return;
    let items = [];
    let selected = 0;

    function close() { list.hidden = true; items = []; }

    function render() {
      list.innerHTML = "";
      items.forEach((item, i) => {
        const li = document.createElement("li");
        li.textContent = item.label;
        const kind = document.createElement("small");
        kind.textContent = item.kind;
        li.appendChild(kind);
        if (i === selected) li.className = "selected";
        li.addEventListener("mousedown", (event) => { event.preventDefault(); accept(i); });
        list.appendChild(li);
      });
      list.hidden = items.length === 0;
    }

    function accept(i) {
      const item = items[i];
      const before = box.value.slice(0, box.selectionStart);
      const after = box.value.slice(box.selectionStart);
      const head = before.slice(0, before.length - item.replace) + item.insert;
      box.value = head + after;
      box.selectionStart = box.selectionEnd = head.length;
      close();
      box.focus();
      suggest();
    }

    async function suggest() {
      const before = box.value.slice(0, box.selectionStart);
      const open = before.lastIndexOf("{");
      if (open < 0 || before.lastIndexOf("}") > open) { close(); return; }
      const inside = before.slice(open);
      const value = inside.match(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/);
      if (value) {
        const values = await fetchJson(`/logs/labels/${encodeURIComponent(value[1])}/values`);
        const prefix = value[3];
        items = values.filter((v) => v.startsWith(prefix) && v !== prefix).slice(0, 50)
          .map((v) => ({ label: v, kind: value[1], insert: v + '"', replace: prefix.length }));
      } else {
        const name = inside.match(/[{,]\s*([A-Za-z_][A-Za-z0-9_]*)?$/);
        if (!name) { close(); return; }
        const prefix = name[1] || "";
        const names = await fetchJson("/logs/labels");
        items = names.filter((n) => n.startsWith(prefix)).slice(0, 50)
          .map((n) => ({ label: n, kind: "label", insert: n + '="', replace: prefix.length }));
      }
      selected = 0;
      render();
    }

    box.addEventListener("input", suggest);
    box.addEventListener("click", suggest);
    box.addEventListener("blur", () => setTimeout(close, 150));
    box.addEventListener("keydown", (event) => {
      if (!list.hidden && items.length) {
        if (event.key === "ArrowDown") { selected = (selected + 1) % items.length; render(); event.preventDefault(); return; }
        if (event.key === "ArrowUp") { selected = (selected + items.length - 1) % items.length; render(); event.preventDefault(); return; }
        if (event.key === "Tab" || event.key === "Enter") { accept(selected); event.preventDefault(); return; }
        if (event.key === "Escape") { close(); return; }
      }
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        htmx.trigger(box.form, "submit");
      }
    });
  }

  // -- live tail -------------------------------------------------------------------------------

  const MAX_TAIL_LINES = 1000;
  let socket = null;
  let tailing = false;

  function tailLine(ts, line, stream) {
    const li = document.createElement("li");
    const level = stream.level || "unknown";
    li.className = `line level-${level}`;
    for (const [cls, text] of [["time", utcTime(ts)], ["level", level], ["service", stream.service || ""], ["message", line]]) {
      const el = document.createElement(cls === "time" ? "time" : "span");
      if (cls !== "time") el.className = cls;
      el.textContent = text;
      li.appendChild(el);
    }
    return li;
  }

  function showFrame(frame) {
    const list = document.getElementById("tail-lines");
    const fresh = [];
    for (const stream of frame.streams || []) {
      for (const value of stream.values) fresh.push([value[0], value[1], stream.stream]);
    }
    fresh.sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1));
    for (const [ts, line, labels] of fresh) list.prepend(tailLine(ts, line, labels));
    const dropped = (frame.dropped_entries || []).length;
    if (dropped) {
      const marker = document.createElement("li");
      marker.className = "line dropped";
      // The server names at most 100 dropped lines a frame (logs/tail/session.py,
      // MAX_DROPPED_PER_FRAME) and stops matching past that: 100 means "at least".
      const count = dropped >= 100 ? `${dropped} or more` : `${dropped}`;
      marker.textContent = `${count} line${dropped === 1 ? "" : "s"} dropped: the tail was too fast to show them all`;
      list.prepend(marker);
    }
    while (list.children.length > MAX_TAIL_LINES) list.lastElementChild.remove();
  }

  async function connect() {
    const form = document.getElementById("search-form");
    const status = document.getElementById("tail-status");
    const answer = await fetch("/logs/token", { credentials: "same-origin" });
    if (!answer.ok) { window.location = "/logs/login"; return; }
    const { token } = await answer.json();
    const start = (BigInt(Date.now() - 5000) * NS_PER_MS).toString();
    const params = new URLSearchParams({ query: form.querySelector("[name=query]").value, start, limit: "100", token });
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}/api/v1/logs/loki/api/v1/tail?${params}`);
    socket.onopen = () => { status.textContent = "· connected"; document.getElementById("tail").dataset.state = "open"; };
    socket.onmessage = (event) => showFrame(JSON.parse(event.data));
    socket.onclose = (event) => {
      document.getElementById("tail").dataset.state = "closed";
      if (!tailing) return;
      status.textContent = `· reconnecting${event.reason ? " (" + event.reason + ")" : ""}`;
      setTimeout(() => { if (tailing) connect(); }, 2000);
    };
  }

  function setupTail() {
    const button = document.getElementById("live");
    if (!button) return;
    button.addEventListener("click", () => {
      tailing = !tailing;
      button.setAttribute("aria-pressed", String(tailing));
      button.textContent = tailing ? "Stop tail" : "Live tail";
      document.getElementById("tail").hidden = !tailing;
      if (tailing) {
        document.getElementById("tail-lines").innerHTML = "";
        connect();
      } else if (socket) {
        socket.close();
        socket = null;
      }
    });
  }

  function restartTail() {
    // A new search while tailing: the tail follows the new query.
    if (!tailing || !socket) return;
    const old = socket;
    socket = null;
    old.onclose = null;
    old.close();
    document.getElementById("tail-lines").innerHTML = "";
    connect();
  }

  function setupRange() {
    const form = document.getElementById("search-form");
    if (!form) return;
    form.querySelector("[name=range]").addEventListener("change", () => {
      form.querySelector("[name=from]").value = "";
      form.querySelector("[name=to]").value = "";
      htmx.trigger(form, "submit");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    drawHistogram();
    setupSuggestions();
    setupTail();
    setupRange();
    const form = document.getElementById("search-form");
    if (form) form.addEventListener("htmx:beforeRequest", restartTail);
  });
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target.id === "results") drawHistogram();
  });
  window.addEventListener("resize", drawHistogram);
})();
