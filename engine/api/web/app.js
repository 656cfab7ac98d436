// The engine console: reads the daemon's API with the operator's key and
// follows /ws. No framework, no build step; charts are uPlot (vendored).
"use strict";

const STEP_S = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600 };
const TERMINAL = new Set(["filled", "canceled", "rejected", "expired", "absent"]);
const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem("engine.key") || "",
  adminKey: "",
  book: "", interval: "1m",
  candles: [], levels: [], fills: [], orders: new Map(), pnl: [[], []],
  ws: null, charts: {}, retry: 1000,
};
window.engineConsole = state; // for the operator's devtools

function show(text, isError) {
  const m = $("message");
  m.textContent = text; m.hidden = !text;
  m.style.background = isError ? "#7f1d1d" : "#37474f";
}

async function api(path, options = {}, key = state.key) {
  const headers = Object.assign({}, options.headers || {});
  if (key) headers["X-API-Key"] = key;
  const r = await fetch(path, Object.assign({}, options, { headers }));
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401 && key === state.key) show("This daemon needs a read key: enter it above.", true);
  return { status: r.status, body };
}

const fmt = (v, digits = 2) => (v === null || v === undefined || v === "") ? "" :
  Number(v).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmtQty = (v) => (v === null || v === undefined) ? "" : String(Number(v));

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td;
}

// ------------------------------------------------------------------ health

function renderHealth(h) {
  const badge = $("health");
  badge.textContent = h.ok ? "health: ok" : "health: degraded";
  badge.className = "badge " + (h.ok ? "ok" : "bad");
  const ul = $("components"); ul.replaceChildren();
  for (const [name, c] of Object.entries(h.components || {}).sort()) {
    const li = document.createElement("li");
    li.className = c.ok ? "ok" : "bad";
    li.textContent = name + (c.reason ? ": " + c.reason : "");
    ul.appendChild(li);
  }
}

// -------------------------------------------------------------------- book

function renderBook(b) {
  if (b.book !== state.book) return;
  $("book-state").textContent = `${b.state} · seq ${b.seq}`;
  const tbody = $("ladder").tBodies[0];
  const asks = (b.asks || []).slice(0, 10).reverse(), bids = (b.bids || []).slice(0, 10);
  const most = Math.max(1e-12, ...asks.map((l) => l[1]), ...bids.map((l) => l[1]));
  const rows = [];
  const row = (cls, [px, sz]) => {
    const tr = document.createElement("tr"); tr.className = cls;
    cell(tr, fmt(px)); cell(tr, fmtQty(sz.toFixed(5)));
    const bar = cell(tr, "", "bar"), span = document.createElement("span");
    span.style.width = (100 * sz / most).toFixed(1) + "%"; bar.appendChild(span);
    rows.push(tr);
  };
  asks.forEach((l) => row("ask", l));
  if (asks.length && bids.length) {
    const tr = document.createElement("tr"); tr.className = "spread";
    const td = cell(tr, "spread " + fmt(b.asks[0][0] - b.bids[0][0])); td.colSpan = 3;
    rows.push(tr);
  }
  bids.forEach((l) => row("bid", l));
  tbody.replaceChildren(...rows);
  tbody.dataset.version = b.version;
}

// ----------------------------------------------------------------- candles

function candlePlugin() {
  return { hooks: { draw: [(u) => {
    const ctx = u.ctx, [t, o, h, l, c] = u.data, px = devicePixelRatio || 1;
    const step = t.length > 1 ? u.valToPos(t[1], "x", true) - u.valToPos(t[0], "x", true) : 10 * px;
    const body = Math.max(1, Math.min(14 * px, step * 0.6));
    ctx.save();
    ctx.beginPath(); ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height); ctx.clip();
    for (let i = 0; i < t.length; i++) {
      if (o[i] === null) continue;
      const x = u.valToPos(t[i], "x", true);
      const yo = u.valToPos(o[i], "y", true), yc = u.valToPos(c[i], "y", true);
      const yh = u.valToPos(h[i], "y", true), yl = u.valToPos(l[i], "y", true);
      ctx.fillStyle = ctx.strokeStyle = c[i] >= o[i] ? "#26a69a" : "#ef5350";
      ctx.lineWidth = px;
      ctx.beginPath(); ctx.moveTo(x, yh); ctx.lineTo(x, yl); ctx.stroke();
      ctx.fillRect(x - body / 2, Math.min(yo, yc), body, Math.max(px, Math.abs(yc - yo)));
    }
    ctx.setLineDash([4 * px, 4 * px]); ctx.lineWidth = px;
    for (const lv of state.levels) {  // grid levels: entries dashed, exits dotted
      const y = u.valToPos(lv.price, "y", true);
      ctx.strokeStyle = lv.side === "buy" ? "rgba(38,166,154,.8)" : "rgba(239,83,80,.8)";
      ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
    }
    ctx.setLineDash([]);
    for (const f of state.fills) {  // our fills: triangles (buy up, sell down)
      if (f.pair && state.book && !state.book.endsWith(":" + f.pair)) continue;
      const x = u.valToPos(f.time_ms / 1000, "x", true), y = u.valToPos(Number(f.price), "y", true);
      const s = 6 * px, dir = f.side === "buy" ? 1 : -1;
      ctx.fillStyle = "#f0b90b";
      ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x - s, y + dir * s * 1.6); ctx.lineTo(x + s, y + dir * s * 1.6);
      ctx.closePath(); ctx.fill();
    }
    ctx.restore();
  }] } };
}

function chartSize(el, height) {
  return { width: Math.max(200, el.clientWidth - 4), height };
}

function candleRange() {
  const prices = state.candles.filter((r) => r.open !== null).flatMap((r) => [r.high, r.low]);
  if (!prices.length) return [0, 1];
  const lo = Math.min(...prices), hi = Math.max(...prices);
  const near = state.levels.map((lv) => lv.price).filter((p) => p > lo * 0.97 && p < hi * 1.03);
  const a = Math.min(lo, ...near), b = Math.max(hi, ...near), pad = (b - a) * 0.05 || a * 0.001;
  return [a - pad, b + pad];
}

function renderCandles() {
  const el = $("candles"), rows = state.candles;
  const data = [rows.map((r) => r.open_ns / 1e9), rows.map((r) => r.open), rows.map((r) => r.high),
    rows.map((r) => r.low), rows.map((r) => r.close)];
  if (!state.charts.candles) {
    const hidden = { paths: () => null, points: { show: false } };
    state.charts.candles = new uPlot({
      ...chartSize(el, window.innerWidth < 800 ? 240 : 320),
      scales: { x: { time: true, range: (u, a, b) => [a - STEP_S[state.interval], b + STEP_S[state.interval]] }, y: { range: candleRange } },
      legend: { show: false },
      axes: [{ stroke: "#8a96a3", grid: { stroke: "#2a3540" } },
        { stroke: "#8a96a3", grid: { stroke: "#2a3540" }, size: 70 }],
      series: [{}, { ...hidden }, { ...hidden }, { ...hidden }, { ...hidden }],
      plugins: [candlePlugin()],
    }, data, el);
  } else {
    state.charts.candles.setData(data);
  }
  const drawn = rows.filter((r) => r.open !== null);
  el.dataset.candles = String(drawn.length);
  const last = drawn[drawn.length - 1];
  el.dataset.lastClose = last ? String(last.close) : "";
  el.dataset.lastOpenNs = last ? String(last.open_ns) : "";
  $("candle-summary").textContent = last ?
    `${drawn.length} candles · last ${new Date(last.open_ns / 1e6).toISOString().slice(11, 16)} ` +
    `O ${fmt(last.open)} H ${fmt(last.high)} L ${fmt(last.low)} C ${fmt(last.close)} · ` +
    `${state.levels.length} grid levels · ${state.fills.length} fills` : "no trades recorded yet";
}

async function loadCandles() {
  if (!state.book) return;
  const r = await api(`/market/candles/${state.book}?interval=${state.interval}`);
  if (r.status !== 200) { $("candle-summary").textContent = `candles: ${r.status} ${r.body && r.body.error || ""}`; return; }
  const rows = r.body.candles.slice(-120), first = rows.findIndex((c) => c.open !== null);
  state.candles = first < 0 ? [] : rows.slice(Math.max(0, first - 1));  // from the first trade
  renderCandles();
}

// --------------------------------------------------- orders, fills, positions

function renderOrders() {
  const tbody = $("orders").tBodies[0];
  const open = [...state.orders.values()].filter((o) => !TERMINAL.has(o.state))
    .sort((a, b) => Number(b.price) - Number(a.price));
  tbody.replaceChildren(...open.map((o) => {
    const tr = document.createElement("tr"); tr.dataset.id = o.client_order_id;
    cell(tr, o.client_order_id); cell(tr, o.side, "side-" + o.side); cell(tr, fmt(o.price));
    cell(tr, fmtQty(o.quantity)); cell(tr, fmtQty(o.filled)); cell(tr, o.state);
    return tr;
  }));
  $("orders-count").textContent = `${open.length} open`;
}

function renderFills() {
  const tbody = $("fills").tBodies[0];
  tbody.replaceChildren(...state.fills.slice(0, 100).map((f) => {
    const tr = document.createElement("tr");
    cell(tr, new Date(f.time_ms).toISOString().slice(11, 19)); cell(tr, f.side, "side-" + f.side);
    cell(tr, fmt(f.price)); cell(tr, fmtQty(f.quantity)); cell(tr, `${fmtQty(f.fee)} ${f.fee_asset}`);
    return tr;
  }));
}

function renderPositions(body) {
  const tbody = $("positions").tBodies[0];
  tbody.replaceChildren(...(body.positions || []).map((p) => {
    const tr = document.createElement("tr");
    cell(tr, `${p.venue}:${p.pair}`); cell(tr, fmtQty(p.quantity)); cell(tr, fmt(p.average_price));
    cell(tr, fmt(p.realized_pnl, 4)); cell(tr, fmt(p.unrealized_pnl, 4));
    return tr;
  }));
  const pnl = body.pnl; if (!pnl) return;
  state.pnl[0].push(pnl.time_ms / 1000); state.pnl[1].push(Number(pnl.total));
  if (state.pnl[0].length > 2000) { state.pnl[0].shift(); state.pnl[1].shift(); }
  $("pnl-summary").textContent = `PnL total ${fmt(pnl.total, 4)} (realized ${fmt(pnl.realized, 4)}, unrealized ${fmt(pnl.unrealized, 4)})`;
  const el = $("pnl");
  if (!state.charts.pnl) {
    state.charts.pnl = new uPlot({
      ...chartSize(el, 160), scales: { x: { time: true } }, legend: { show: false },
      axes: [{ stroke: "#8a96a3", grid: { stroke: "#2a3540" } }, { stroke: "#8a96a3", grid: { stroke: "#2a3540" }, size: 60 }],
      series: [{}, { stroke: "#f0b90b", width: 2 }],
    }, state.pnl, el);
  } else {
    state.charts.pnl.setData(state.pnl);
  }
}

async function loadTrading() {
  const [orders, fills, positions, strategies] = await Promise.all([
    api("/orders"), api("/fills?limit=200"), api("/positions"), api("/strategies")]);
  if (orders.status === 200) {
    state.orders = new Map(orders.body.orders.map((o) => [o.client_order_id, o])); renderOrders();
  }
  if (fills.status === 200) { state.fills = fills.body.fills; renderFills(); }
  if (positions.status === 200) renderPositions(positions.body);
  if (strategies.status === 200) {
    const mine = strategies.body.strategies.filter((s) => state.book.endsWith(`:${s.pair}`));
    state.levels = mine.flatMap((s) => s.levels.flatMap((lv) => {
      const out = [{ price: Number(lv.entry_price), side: lv.side }];
      if (lv.state === "locked") out.push({ price: Number(lv.exit_price), side: lv.side === "buy" ? "sell" : "buy" });
      return out;
    }));
    $("halt").textContent = strategies.body.halted ? "Halted" : "Halt trading";
    $("halt").dataset.halted = String(strategies.body.halted);
  }
}

// --------------------------------------------------------------- streams

function connect() {
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const q = state.key ? "?key=" + encodeURIComponent(state.key) : "";
  const ws = new WebSocket(`${proto}://${location.host}/ws${q}`);
  state.ws = ws;
  ws.onopen = () => {
    state.retry = 1000;
    $("stream").textContent = "stream: live"; $("stream").className = "badge ok";
    const topics = ["orders", "fills", "positions", "health"];
    if (state.book) topics.push("book:" + state.book);
    ws.send(JSON.stringify({ op: "subscribe", topics }));
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "book") renderBook(m);
    else if (m.type === "orders") { for (const o of m.items) state.orders.set(o.client_order_id, o); renderOrders(); }
    else if (m.type === "fills") { state.fills = m.items.reverse().concat(state.fills).slice(0, 500); renderFills(); }
    else if (m.type === "positions") renderPositions(m);
    else if (m.type === "health") renderHealth(m);
    else if (m.type === "error") show("stream: " + m.error, true);
  };
  ws.onclose = () => {
    $("stream").textContent = "stream: reconnecting"; $("stream").className = "badge bad";
    state.retry = Math.min(state.retry * 2, 30000);
    setTimeout(connect, state.retry);
  };
}

// ------------------------------------------------------------------ halt

function adminDialog(action) {
  const dialog = $("halt-dialog");
  dialog.dataset.action = action;
  dialog.querySelector("h2").textContent = action === "halt" ? "Halt trading" : "Resume trading";
  $("halt-confirm").textContent = action === "halt" ? "Halt" : "Resume";
  $("halt-reason").hidden = action !== "halt";
  $("halt-error").textContent = "";
  $("admin-key").value = state.adminKey;
  dialog.showModal();
  $("admin-key").focus();
}

async function confirmAdmin(e) {
  e.preventDefault();
  const action = $("halt-dialog").dataset.action, key = $("admin-key").value.trim();
  if (!key) { $("halt-error").textContent = "the admin key is needed"; return; }
  const reason = encodeURIComponent($("halt-reason").value || "halted from the console");
  const path = action === "halt" ? `/trader/halt?reason=${reason}` : "/trader/resume";
  const r = await api(path, { method: "POST" }, key);
  if (r.status !== 200) {
    $("halt-error").textContent = r.status === 401 || r.status === 403 ?
      `refused (${r.status}): not an admin key` : `failed (${r.status}): ${r.body && r.body.error}`;
    return;
  }
  state.adminKey = key;
  $("halt-dialog").close();
  show(action === "halt" ? `Halted: ${r.body.cancels_queued} cancels queued` : "Trading resumed", false);
  loadTrading();
}

// ------------------------------------------------------------------ start

async function loadBooks() {
  const [books, strategies] = await Promise.all([api("/books"), api("/strategies")]);
  const select = $("book-select");
  const keys = books.status === 200 ? books.body.books.map((b) => b.book) : [];
  select.replaceChildren(...keys.map((k) => { const o = document.createElement("option"); o.textContent = k; return o; }));
  const traded = strategies.status === 200 ? strategies.body.strategies.map((s) => `${s.venue}:${s.market}:${s.pair}`) : [];
  state.book = keys.find((k) => traded.includes(k)) || keys[0] || "";
  select.value = state.book;
}

async function start() {
  const status = await api("/status");
  if (status.status === 200) { $("role").textContent = `role ${status.body.role} · ${status.body.daemon_id}`; show("", false); }
  const health = await api("/health");
  if (health.body) renderHealth({ ok: health.body.ok, components: health.body.components });
  await loadBooks();
  await loadTrading();
  await loadCandles();
  connect();
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.key = $("key").value.trim(); sessionStorage.setItem("engine.key", state.key);
  start();
});
$("book-select").addEventListener("change", (e) => {
  state.book = e.target.value; state.candles = []; loadTrading().then(loadCandles); connect();
});
$("interval").addEventListener("change", (e) => { state.interval = e.target.value; loadCandles(); });
$("halt").addEventListener("click", () => adminDialog("halt"));
$("resume").addEventListener("click", () => adminDialog("resume"));
$("halt-form").addEventListener("submit", confirmAdmin);
$("halt-cancel").addEventListener("click", () => $("halt-dialog").close());
window.addEventListener("resize", () => {
  for (const [name, chart] of Object.entries(state.charts)) {
    chart.setSize(chartSize($(name), name === "pnl" ? 160 : (window.innerWidth < 800 ? 240 : 320)));
  }
});
setInterval(() => { loadCandles(); loadTrading(); }, 5000);  // candles and levels change slowly
start();
