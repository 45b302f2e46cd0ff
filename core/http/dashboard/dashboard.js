/*
 * The dashboard's script: plain browser JavaScript, no build step, no dependency (the host may
 * be offline). It reads `/events` with fetch() (EventSource cannot send the Authorization
 * header), keeps the token in sessionStorage, and draws everything with textContent and
 * createElement: failure evidence comes from plugins and supervised children, and is treated as
 * hostile; no data ever goes through innerHTML.
 */
/* global document, window, fetch, sessionStorage, TextDecoder, AbortController */
'use strict';

const TOKEN_KEY = 'recovery-agent.token';
const HISTORY_POINTS = 600;
/** Failures kept for the timeline (which shows the newest 100): the oldest go beyond this. */
const MAX_FAILURES = 500;
const COLORS = ['#0969da', '#8250df', '#bf3989', '#9a6700', '#1a7f37', '#cf222e', '#57606a'];

const $ = (id) => document.getElementById(id);

/** An element with text children (strings become text nodes, never markup). */
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    if (props.class) e.className = props.class;
    if (props.title !== undefined) e.title = String(props.title);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof window.Node ? c : String(c));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

const fmtTime = (ms) => (typeof ms === 'number' ? new Date(ms).toLocaleTimeString() : '–');
const fmtMs = (ms) => (typeof ms !== 'number' ? '–' : ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`);
const roundMs = (v) => (typeof v === 'number' ? Math.round(v) : v);
const fmtBytes = (b) => (typeof b !== 'number' ? '–' : b < 1024 ? `${b} B` : b < 1 << 20 ? `${(b / 1024).toFixed(1)} KiB` : b < 1 << 30 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / (1 << 30)).toFixed(2)} GiB`);
const levelClass = (score) => (typeof score !== 'number' ? 'mute' : score >= 80 ? 'ok' : score >= 50 ? 'warn' : 'bad');

// ---- state -------------------------------------------------------------------------------

let token = sessionStorage.getItem(TOKEN_KEY);
let stream = null;
const state = {
  status: {},
  stores: [],
  /** failure id → { failure, state, recovery } */
  failures: new Map(),
  history: { t: [], series: new Map() },
  lastHealthAt: 0,
};

const headers = () => (token ? { authorization: `Bearer ${token}` } : {});

function stateOfRecovery(r) {
  if (r.retry) return 'retrying'; // failed while its fault held; another attempt is planned
  if (r.escalated) return 'escalated';
  if (r.outcome === 'no-action') return 'unhandled';
  return r.outcome; // recovered, applied-unverified, failed
}

/** Keeps state.failures bounded (a long-open page would otherwise hold every failure it saw). */
function trimFailures() {
  while (state.failures.size > MAX_FAILURES) {
    let oldest = null;
    for (const [id, e] of state.failures) if (oldest === null || !(e.failure.detectedAt >= oldest.at)) oldest = { id, at: e.failure.detectedAt };
    state.failures.delete(oldest.id);
  }
}

function noteFailure(f, st) {
  const e = state.failures.get(f.id);
  if (e) {
    e.failure = f;
    if (st && !e.recovery) e.state = st;
  } else {
    state.failures.set(f.id, { failure: f, state: st || 'detected', recovery: null });
    trimFailures();
  }
}

function noteRecovery(r) {
  const e = state.failures.get(r.failureId);
  if (e) {
    e.recovery = r;
    e.state = stateOfRecovery(r);
  } else {
    // Its failure is older than what we were sent: draw it from the record.
    state.failures.set(r.failureId, { failure: { id: r.failureId, kind: r.kind, priority: r.priority, subject: r.subject, detectedAt: r.detectedAt, evidence: {} }, state: stateOfRecovery(r), recovery: r });
    trimFailures();
  }
}

function noteOpen(open) {
  for (const o of open || []) noteFailure(o.failure, o.state === 'running' ? 'recovering' : o.state);
}

function addHealthSample(h) {
  if (!h || typeof h.at !== 'number' || h.at <= state.lastHealthAt) return;
  state.lastHealthAt = h.at;
  const values = new Map([['score', h.score]]);
  for (const c of h.components || []) values.set(`component.${c.component}`, c.score);
  pushSample(h.at, values);
}

function pushSample(t, values) {
  const hs = state.history;
  hs.t.push(t);
  for (const [name, col] of hs.series) col.push(values.has(name) ? values.get(name) : null);
  for (const [name, v] of values) if (!hs.series.has(name)) hs.series.set(name, [...Array(hs.t.length - 1).fill(null), v]);
  if (hs.t.length > HISTORY_POINTS) {
    hs.t.shift();
    for (const col of hs.series.values()) col.shift();
  }
}

// ---- drawing -----------------------------------------------------------------------------

function fillBody(table, rows, empty) {
  const body = $(table).tBodies[0];
  const cols = $(table).tHead.rows[0].cells.length;
  if (rows.length === 0) {
    const td = el('td', { class: 'mute' }, empty);
    td.colSpan = cols;
    rows = [el('tr', null, td)];
  }
  body.replaceChildren(...rows);
}

function drawHeader() {
  const s = state.status;
  const a = s.agent;
  $('agent').textContent = a ? `v${a.version} · pid ${a.pid} · ${a.config || ''}` : '';
  const h = s.health;
  const o = $('overall');
  if (h) {
    o.textContent = h.healthy ? 'healthy' : `unhealthy: ${h.reasons.join('; ')}`;
    o.className = `badge ${h.healthy ? 'ok' : 'bad'}`;
  }
  const acc = $('access');
  acc.textContent = token ? 'token set' : 'read-only without the token';
  acc.className = `badge ${token ? 'ok' : 'off'}`;
}

function drawHealth() {
  const hm = state.status.healthMonitor;
  $('health-panel').hidden = !hm && state.history.t.length === 0;
  if (!hm) return;
  $('score').textContent = typeof hm.score === 'number' ? String(Math.round(hm.score)) : '–';
  $('score').className = `score ${levelClass(hm.score)}`;
  $('level').textContent = hm.level || '';
  fillBody('components', (hm.components || []).map((c) => el('tr', null, el('td', null, c.component), el('td', { class: levelClass(c.score) }, c.score), el('td', null, c.weight), el('td', { class: 'mute' }, (c.probes || []).join(', ')))), 'no component');
  const alerting = (hm.predictions || []).filter((p) => p.alerting);
  const failing = hm.failingProbes || [];
  $('predictions').replaceChildren(
    ...alerting.map((p) => el('div', { class: 'bad' }, `predicted exhaustion of ${p.resource} in ${fmtMs((p.etaSeconds ?? 0) * 1000)} (p=${p.probability})`)),
    ...failing.map((p) => el('div', { class: 'warn' }, `probe ${p.id} failing: ${p.error}`)),
  );
  drawChart();
}

function drawChart() {
  const chart = $('chart');
  const { t, series } = state.history;
  const names = [...series.keys()].sort((a, b) => (a === 'score' ? -1 : b === 'score' ? 1 : a.localeCompare(b)));
  const parts = [svg('line', { x1: 0, x2: 600, y1: 120 - 80 * 1.2, y2: 120 - 80 * 1.2, stroke: '#d0d7de', 'stroke-dasharray': '4 4' })];
  const legend = [];
  if (t.length >= 1) {
    const t0 = t[0];
    const span = Math.max(1, t[t.length - 1] - t0);
    names.forEach((name, i) => {
      const color = name === 'score' ? '#1f2328' : COLORS[i % COLORS.length];
      const pts = [];
      series.get(name).forEach((v, k) => {
        if (typeof v === 'number') pts.push(`${((t[k] - t0) / span * 600).toFixed(1)},${(120 - Math.max(0, Math.min(100, v)) * 1.2).toFixed(1)}`);
      });
      if (pts.length === 1) pts.push(pts[0].replace(/^[^,]+/, '600'));
      parts.push(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': name === 'score' ? 2.5 : 1.2, 'vector-effect': 'non-scaling-stroke' }));
      const sw = el('i');
      sw.style.background = color;
      legend.push(el('span', null, sw, name.replace(/^component\./, '')));
    });
  }
  chart.replaceChildren(...parts);
  $('legend').replaceChildren(...legend);
}

function evidenceText(ev) {
  if (!ev || typeof ev !== 'object') return '';
  const s = Object.entries(ev).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

const STATE_CLASS = { detected: 'warn', queued: 'warn', recovering: 'warn', recovered: 'ok', 'applied-unverified': 'warn', unhandled: 'mute', escalated: 'bad', failed: 'bad', cleared: 'ok' };

function drawFailures() {
  const open = state.status.openFailures || [];
  $('open-count').textContent = String(open.length);
  fillBody('open', open.map((o) => {
    const st = o.state === 'running' ? 'recovering' : o.state;
    return el('tr', null, el('td', null, fmtTime(o.failure.detectedAt)), el('td', null, o.failure.priority), el('td', null, o.failure.kind), el('td', null, o.failure.subject), el('td', { class: STATE_CLASS[st] || '' }, st), el('td', { class: 'evidence' }, evidenceText(o.failure.evidence)));
  }), 'none');

  const all = [...state.failures.values()].sort((a, b) => b.failure.detectedAt - a.failure.detectedAt).slice(0, 100);
  fillBody('timeline', all.map((e) => {
    const f = e.failure;
    const r = e.recovery;
    let rto = el('td', { class: 'mute' }, '–');
    if (r) {
      const over = r.rtoMs > r.targetMs;
      const bar = el('span', { class: `bar${over ? ' over' : ''}` }, el('i'));
      bar.firstChild.style.width = `${Math.min(100, (r.rtoMs / Math.max(1, r.targetMs)) * 100).toFixed(1)}%`;
      rto = el('td', { class: r.withinTarget ? 'ok' : over ? 'bad' : '', title: r.reason || '' }, bar, `RTO ${fmtMs(r.rtoMs)} / ${fmtMs(r.targetMs)}`);
    }
    const row = el('tr', null, el('td', null, fmtTime(f.detectedAt)), el('td', null, f.priority), el('td', null, f.kind), el('td', null, f.subject), el('td', { class: STATE_CLASS[e.state] || '' }, e.state), rto);
    row.dataset.failureId = f.id;
    return row;
  }), 'no failure yet');

  const st = state.status.statistics;
  if (st) {
    const pct = (x) => (typeof x === 'number' ? `${(x * 100).toFixed(0)} %` : '–');
    $('stats').replaceChildren(
      el('span', null, `detected ${st.failuresDetected}`),
      el('span', null, `recovered ${st.recoveriesSucceeded}`),
      el('span', null, `failed ${st.recoveriesFailed}`),
      el('span', null, `escalated ${st.escalations}`),
      el('span', null, `unhandled ${st.recoveriesUnhandled}`),
      el('span', null, `RTO avg ${fmtMs(st.avgRtoMs)} · p95 ${fmtMs(st.p95RtoMs)}`),
      el('span', null, `RTO compliance ${pct(st.rtoComplianceRate)}`),
    );
  }
}

function drawScrub() {
  const scrub = state.status.scrub;
  $('scrub-panel').hidden = !scrub;
  if (!scrub || !scrub.stores) return;
  const rows = Object.entries(scrub.stores).map(([id, s]) => {
    const pct = s.pageCount > 0 ? Math.min(100, (s.position / s.pageCount) * 100) : 0;
    const bar = el('span', { class: 'bar' }, el('i'));
    bar.firstChild.style.width = `${pct.toFixed(1)}%`;
    return el('div', null, el('strong', null, id), ' ', bar, `${s.state} · page ${s.position}/${s.pageCount} · pass ${s.passes} · ${fmtBytes(s.rateBytesPerSec)}/s`,
      s.corruptFound > 0 ? el('span', { class: 'bad' }, ` · ${s.corruptFound} corrupt found`) : null,
      s.lastError ? el('span', { class: 'warn' }, ` · ${s.lastError}`) : null,
      ' ', scanButton(id));
  });
  $('scrub').replaceChildren(...(rows.length ? rows : [el('span', { class: 'mute' }, 'no store scrubbed')]),
    el('div', { class: 'mute' }, `${scrub.pagesScanned ?? 0} pages checked, ${scrub.corruptPagesDetected ?? 0} corrupt since start`));
}

/** "scan now" (POST /scans): a write, so disabled without the token. */
function scanButton(store) {
  const b = el('button', { title: token ? `full-speed scan of ${store} now` : 'read-only without the token' }, 'scan now');
  b.disabled = !token;
  b.addEventListener('click', async () => {
    b.disabled = true;
    b.textContent = 'scanning…';
    try {
      const res = await fetch('scans', { method: 'POST', headers: { ...headers(), 'content-type': 'application/json' }, body: JSON.stringify({ store }) });
      const body = await res.json().catch(() => ({}));
      b.textContent = res.ok ? `scanned ${body.pagesScanned} pages, ${(body.corrupt || []).length} corrupt` : `scan: ${body.error || res.status}`;
    } catch (err) {
      b.textContent = `scan: ${err.message}`;
    }
    window.setTimeout(() => drawScrub(), 5000);
  });
  return b;
}

function drawProcesses() {
  const ps = state.status.processes;
  $('processes-panel').hidden = !Array.isArray(ps);
  if (!Array.isArray(ps)) return;
  fillBody('processes', ps.map((p) => el('tr', null,
    el('td', null, p.id, p.adopted ? el('span', { class: 'mute' }, ' (adopted)') : null),
    el('td', { class: p.state === 'running' ? 'ok' : p.state === 'stopped' ? 'mute' : 'warn' }, p.state),
    el('td', null, p.pid ?? '–'), el('td', null, p.store ?? '–'), el('td', null, p.restarts), el('td', null, p.crashes), el('td', null, p.hangs),
    el('td', null, typeof p.cpuPercent === 'number' ? `${p.cpuPercent.toFixed(0)} %` : '–'), el('td', null, fmtBytes(p.rssBytes)),
    el('td', null, p.lastHeartbeatAt ? `${((Date.now() - p.lastHeartbeatAt) / 1000).toFixed(1)} s ago` : '–'))), 'no supervised process');
}

function drawReplication() {
  // Shown only when a plugin contributes a `replication` status section: nothing is faked. A
  // primary is one row for itself and one per replica; a replica is one row (its primary as peer).
  const r = state.status.replication;
  $('replication-panel').hidden = r === undefined || r === null || typeof r !== 'object';
  if ($('replication-panel').hidden) return;
  const lagClass = (x) => (x.lagging ? 'warn' : 'ok');
  const rows = [];
  for (const [store, s] of Object.entries(r)) {
    if (s === null || typeof s !== 'object') continue;
    if (s.role === 'primary') {
      rows.push(el('tr', null, el('td', null, store), el('td', null, `primary (${s.mode})`), el('td', null, s.listen ?? '–'),
        el('td', { class: s.owner === 'up' ? 'ok' : 'warn' }, s.owner === 'up' ? `owner up${s.syncState ? ` · ${s.syncState}` : ''}` : `owner down${s.reason ? `: ${s.reason}` : ''}`),
        el('td', null, s.epoch ?? '–'), el('td', null, s.flushedLsn ?? '–'), el('td', null, '–'), el('td', null, '–'), el('td', null, '–')));
      for (const x of Array.isArray(s.replicas) ? s.replicas : []) {
        rows.push(el('tr', null, el('td', null, ''), el('td', { class: 'mute' }, 'replica'), el('td', null, `${x.id} ${x.address ?? ''}`),
          el('td', null, x.state, x.error ? el('span', { class: 'warn' }, ` ${x.error}`) : null), el('td', null, '–'),
          el('td', null, x.durableLsn), el('td', null, x.appliedLsn), el('td', { class: lagClass(x) }, fmtBytes(x.lagBytes)), el('td', { class: lagClass(x) }, fmtMs(roundMs(x.lagMs)))));
      }
    } else {
      rows.push(el('tr', null, el('td', null, store), el('td', null, `replica ${s.id ?? ''}`), el('td', null, s.primary ?? '–'),
        el('td', { class: s.state === 'streaming' ? 'ok' : 'warn' }, s.state, s.reason ? ` (${s.reason})` : ''),
        el('td', null, s.epoch ?? '–'), el('td', null, s.durableLsn ?? '–'), el('td', null, s.appliedLsn ?? '–'),
        el('td', { class: lagClass(s) }, fmtBytes(s.lagBytes)), el('td', { class: lagClass(s) }, fmtMs(roundMs(s.lagMs)))));
    }
  }
  fillBody('replication', rows, 'no replicated store');
}

function drawAll() {
  drawHeader();
  drawHealth();
  drawFailures();
  drawScrub();
  drawProcesses();
  drawReplication();
}

// ---- snapshots (from snapshot-manager's GET /snapshots, when it runs) ---------------------

async function loadSnapshots() {
  const stores = state.stores.filter((s) => s.snapshots);
  $('snapshots-panel').hidden = stores.length === 0;
  const blocks = [];
  for (const s of stores) {
    try {
      const res = await fetch(`snapshots?store=${encodeURIComponent(s.id)}`, { headers: headers() });
      if (res.status === 404 || res.status === 503) {
        blocks.push(el('div', { class: 'mute' }, `${s.id}: the snapshot manager is not running`));
        continue;
      }
      const body = await res.json();
      if (!res.ok) {
        blocks.push(el('div', { class: 'warn' }, `${s.id}: ${body.error || res.status}`));
        continue;
      }
      const list = body.snapshots || [];
      const last = list.slice(-8).reverse();
      blocks.push(el('div', null, el('strong', null, s.id), ` · ${list.length} snapshot${list.length === 1 ? '' : 's'}`));
      const table = el('table', null, el('thead', null, el('tr', null, ...['id', 'kind', 'finished', 'pages', 'size'].map((h) => el('th', null, h)))),
        el('tbody', null, ...last.map((m) => el('tr', null, el('td', null, m.id), el('td', null, m.kind), el('td', null, fmtTime(m.finishedAt)), el('td', null, m.pages), el('td', null, fmtBytes(m.bytes))))));
      blocks.push(table);
    } catch (err) {
      blocks.push(el('div', { class: 'warn' }, `${s.id}: ${err.message}`));
    }
  }
  $('snapshots').replaceChildren(...blocks);
}

async function loadHistory() {
  try {
    const res = await fetch('health/history?limit=300', { headers: headers() });
    if (!res.ok) return;
    const h = await res.json();
    state.history = { t: [], series: new Map() };
    h.timestamps.forEach((t, i) => {
      const values = new Map();
      for (const [name, col] of Object.entries(h.series)) if (typeof col[i] === 'number') values.set(name, col[i]);
      pushSample(t, values);
    });
    state.lastHealthAt = h.timestamps.length ? h.timestamps[h.timestamps.length - 1] : 0;
    drawHealth();
  } catch {
    // no health monitor: the panel stays as the status draws it
  }
}

// ---- the event stream --------------------------------------------------------------------

function onEvent(type, data) {
  switch (type) {
    case 'state':
      state.status = data;
      state.stores = data.stores || [];
      for (const f of data.recentFailures || []) noteFailure(f);
      for (const r of data.recentRecoveries || []) noteRecovery(r);
      noteOpen(data.openFailures);
      addHealthSample(data.healthMonitor);
      if (data.healthMonitor) void loadHistory(); // (no health monitor: no history to ask for)
      void loadSnapshots();
      break;
    case 'status':
      Object.assign(state.status, data);
      noteOpen(data.openFailures);
      addHealthSample(data.healthMonitor);
      break;
    case 'failure':
      noteFailure(data, 'detected');
      break;
    case 'recovering':
      noteFailure(data, 'recovering');
      break;
    case 'cleared': {
      // Its detector closed it (the store appeared, say): not a recovery, no RTO.
      const e = state.failures.get(data.failureId);
      if (e) e.state = 'cleared';
      state.status.openFailures = (state.status.openFailures || []).filter((o) => o.failure.id !== data.failureId);
      break;
    }
    case 'recovery':
      noteRecovery(data);
      // Off the open list now, unless escalated (the next status refresh says the same).
      if (!data.escalated) state.status.openFailures = (state.status.openFailures || []).filter((o) => o.failure.id !== data.failureId);
      void loadSnapshots();
      break;
    default:
      return;
  }
  drawAll();
}

function setLive(text, cls) {
  $('live').textContent = text;
  $('live').className = `badge ${cls}`;
}

async function connect() {
  stream?.abort();
  const ctrl = new AbortController();
  stream = ctrl;
  setLive('connecting', 'off');
  let res;
  try {
    res = await fetch('events', { headers: { ...headers(), accept: 'text/event-stream' }, signal: ctrl.signal, cache: 'no-store' });
  } catch {
    if (!ctrl.signal.aborted) retry(ctrl);
    return;
  }
  if (res.status === 401) {
    setLive('needs the token', 'bad');
    askToken(token ? 'that token was refused' : '');
    return;
  }
  if (!res.ok || !res.body) {
    setLive(`error ${res.status}`, 'bad');
    retry(ctrl);
    return;
  }
  setLive('live', 'ok');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) type = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) onEvent(type, JSON.parse(data.join('\n')));
      }
    }
  } catch {
    // cut: reconnect below
  }
  if (!ctrl.signal.aborted) retry(ctrl);
}

function retry(ctrl) {
  setLive('disconnected: retrying', 'off');
  window.setTimeout(() => {
    if (stream === ctrl) void connect();
  }, 2000);
}

function askToken(message) {
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').focus();
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login').hidden = true;
  drawHeader();
  void connect();
});
$('readonly').addEventListener('click', () => {
  $('login').hidden = true;
});

drawAll();
void connect();
window.setInterval(() => void loadSnapshots(), 30_000);
