// Tandem's dashboard (docs/dashboard.md): polls this agent's read-only API
// every 2 s (GET /v1/status, and GET /v1/events when the agent has it), draws
// the members, alarms, history, operations, certificates and a lag graph, and
// sends the operator actions through /ui/api/* with the CSRF token of this
// browser's certificate or login. Hand-written, no framework; the page is
// built with textContent only (nothing the API returns is parsed as HTML).
'use strict';

const POLL_MS = 2000;
const LAG_WINDOW_MS = 5 * 60 * 1000;
const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf8700', '#1b7c83', '#e16f24'];

const state = {
  session: null,      // GET /ui/api/session
  status: null,       // GET /v1/status
  lag: new Map(),     // member -> [[time_ms, bytes], ...]
  eventsNext: 0,      // GET /v1/events?since=
  events: [],
  polling: false,
};

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function fmtBytes(n) {
  if (n === null || n === undefined || n < 0) return '–';
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[i];
}

function fmtTime(ms) {
  if (!ms) return '–';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

async function getJson(path) {
  const r = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}

async function postJson(path, body, csrf) {
  const headers = { 'Content-Type': 'application/json' };
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, {
    method: 'POST', credentials: 'same-origin', cache: 'no-store', headers,
    body: JSON.stringify(body || {}),
  });
  let doc = null;
  try { doc = await r.json(); } catch (e) { doc = null; }
  return { status: r.status, ok: r.ok, doc };
}

// ---- rendering ----

function renderSummary(st) {
  const dl = $('summary');
  clear(dl);
  const rows = [
    ['primary', st.primary || 'none'],
    ['node in use', st.node_in_use || '–'],
    ['paused', st.paused ? 'yes (no automatic failover)' : 'no'],
    ['sync', st.sync ? st.sync.description + ' (' + st.sync.mode + ')' : 'off'],
    ['store', typeof st.store === 'object' ? JSON.stringify(st.store) : st.store],
    ['this node', st.node + ' · ' + (st.status || '')],
  ];
  if (st.proxy) {
    rows.push(['proxy', 'rw → ' + (st.proxy.read_write_target || 'none') + ', ro → ' +
      ((st.proxy.read_only_targets || []).join(', ') || 'none')]);
  }
  for (const w of st.warnings || []) rows.push(['warning', w]);
  for (const [k, v] of rows) {
    dl.appendChild(el('dt', k));
    dl.appendChild(el('dd', v, k === 'warning' ? 'warn' : ''));
  }
}

function memberState(m) {
  if (!m.connected) return 'not connected';
  const c = m.clustering;
  if (c && typeof c === 'object') return c.state || c.text || JSON.stringify(c);
  return c || 'connected';
}

function renderMembers(st) {
  const tbody = $('members').tBodies[0];
  clear(tbody);
  for (const m of st.members || []) {
    const tr = document.createElement('tr');
    tr.dataset.node = m.name;
    const role = m.witness ? 'witness' : (m.role || 'unknown');
    tr.appendChild(el('td', m.name + (m.me ? ' (this node)' : '')));
    tr.appendChild(el('td', role, 'role role-' + role.replace(/[^a-z]/g, '')));
    tr.appendChild(el('td', memberState(m)));
    tr.appendChild(el('td', m.witness || role === 'primary' ? '–' : fmtBytes(m.lag_bytes)));
    const sync = role === 'primary' || m.witness ? '–' :
      (m.sync_standby ? 'sync' : (m.in_sync ? 'streaming' : 'not streaming'));
    tr.appendChild(el('td', sync, sync === 'not streaming' ? 'warn' : ''));
    tr.appendChild(el('td', m.host + (m.port && !m.witness ? ':' + m.port : '')));
    tr.appendChild(el('td', m.certificate || '–'));
    tbody.appendChild(tr);
  }
  const sel = $('switchover-to');
  const keep = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const m of st.members || []) {
    if (m.role === 'replica' && !m.witness) sel.add(new Option(m.name, m.name));
  }
  sel.value = [...sel.options].some((o) => o.value === keep) ? keep : '';
}

function listOrEmpty(ul, items, empty) {
  clear(ul);
  if (items.length === 0) ul.appendChild(el('li', empty, 'empty'));
  for (const i of items) ul.appendChild(i);
}

function renderAlarms(st) {
  const items = [];
  if (st.alarms === null) {
    items.push(el('li', 'unknown: the store cannot be read', 'bad'));
  }
  for (const a of st.alarms || []) {
    const li = el('li', null, 'alarm sev-' + a.severity);
    li.dataset.alarm = a.name;
    li.appendChild(el('strong', a.id + ' ' + a.name));
    li.appendChild(document.createTextNode(' (' + a.severity + (a.node ? ', ' + a.node : '') +
      ', since ' + (a.raised || '') + '): ' + (a.detail || a.cause || '')));
    if (a.fix) li.appendChild(el('div', 'fix: ' + a.fix, 'fix'));
    items.push(li);
  }
  listOrEmpty($('alarms'), items, 'no active alarms');
}

function renderOperations(st) {
  const items = [];
  if (st.intent) {
    const i = st.intent;
    items.push(el('li', i.kind + ' from ' + (i.from || '?') + ' to ' + (i.to || 'the best replica') +
      (i.scheduled ? ' scheduled at ' + i.at : (i.due ? ' (due now)' : ''))));
  }
  const lc = st.last_command;
  if (lc && lc.command && (lc.result === 'running' || lc.progress)) {
    items.push(el('li', lc.command + ': ' + (lc.result || '') +
      (lc.progress ? ' (' + lc.progress + ')' : '')));
  }
  const su = st.schema_upgrade;
  if (su) {
    const detail = su.state === 'failed' ? su.error : su.progress;
    items.push(el('li', 'schema upgrade ' + (su.state === 'running' ? 'running on ' +
      (su.runner || '?') : su.state) + (detail ? ': ' + detail : ''),
      su.state === 'failed' ? 'warn' : ''));
  }
  if (st.paused) items.push(el('li', 'the cluster is paused (maintenance mode)', 'warn'));
  listOrEmpty($('operations'), items, 'none');
}

function renderHistory(st) {
  const tbody = $('history').tBodies[0];
  clear(tbody);
  const h = (st.history || []).slice().reverse().slice(0, 20);
  for (const e of h) {
    const tr = document.createElement('tr');
    tr.appendChild(el('td', e.timeline));
    tr.appendChild(el('td', e.leader));
    tr.appendChild(el('td', fmtTime(e.at_ms)));
    tr.appendChild(el('td', e.reason));
    tbody.appendChild(tr);
  }
}

function renderCerts(st) {
  const tbody = $('certs').tBodies[0];
  clear(tbody);
  const certs = (st.tls && st.tls.certificates) || {};
  const names = Object.keys(certs);
  if (names.length === 0) {
    const tr = document.createElement('tr');
    tr.appendChild(el('td', st.tls ? 'none' : 'no TLS'));
    tbody.appendChild(tr);
  }
  for (const n of names) {
    const c = certs[n];
    const tr = document.createElement('tr');
    tr.appendChild(el('td', n));
    tr.appendChild(el('td', c.not_after || '–'));
    tr.appendChild(el('td', c.days_left));
    tr.appendChild(el('td', c.text || c.state, c.state === 'valid' ? '' :
      (c.state === 'expiring' ? 'warn' : 'bad')));
    tbody.appendChild(tr);
  }
}

function renderEvents() {
  const items = state.events.slice(-30).reverse().map((e) =>
    el('li', e.time + ' ' + e.node + ' ' + e.kind + ': ' + e.message));
  listOrEmpty($('events'), items, 'no events yet');
}

// ---- the lag graph ----

function recordLag(st, now) {
  for (const m of st.members || []) {
    if (m.witness || m.role !== 'replica' || typeof m.lag_bytes !== 'number') continue;
    if (!state.lag.has(m.name)) state.lag.set(m.name, []);
    state.lag.get(m.name).push([now, Math.max(0, m.lag_bytes)]);
  }
  for (const [name, pts] of state.lag) {
    while (pts.length && pts[0][0] < now - LAG_WINDOW_MS) pts.shift();
    if (pts.length === 0) state.lag.delete(name);
  }
}

function drawLag(now) {
  const c = $('lag');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || c.width, h = c.clientHeight || c.height;
  if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 64, bottom = h - 18, top = 8, right = w - 8;
  let max = 1024;
  for (const pts of state.lag.values()) for (const p of pts) max = Math.max(max, p[1]);
  max *= 1.1;
  g.strokeStyle = '#d9d9de';
  g.fillStyle = '#6b6b70';
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = bottom - (bottom - top) * i / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
    g.fillText(fmtBytes(Math.round(max * i / 4)), 4, y + 4);
  }
  for (let m = 0; m <= 5; m++) {
    const x = right - (right - left) * m / 5;
    g.fillText(m === 0 ? 'now' : '-' + m + 'm', x - 10, h - 4);
  }
  const legend = $('lag-legend');
  clear(legend);
  let i = 0;
  for (const [name, pts] of state.lag) {
    const color = COLORS[i++ % COLORS.length];
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach((p, k) => {
      const x = right - (right - left) * (now - p[0]) / LAG_WINDOW_MS;
      const y = bottom - (bottom - top) * p[1] / max;
      if (k === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
    const last = pts[pts.length - 1];
    const s = el('span', name + ' ' + (now - last[0] > 2 * POLL_MS + 1000 ? '(not a replica now)' :
      fmtBytes(last[1])));
    const sw = el('i');
    sw.style.background = color;
    s.prepend(sw);
    legend.appendChild(s);
  }
  if (state.lag.size === 0) legend.appendChild(el('span', 'no replicas streaming'));
}

// ---- who may act ----

function renderSession() {
  const s = state.session;
  const who = $('who');
  const canAct = !!(s && s.authenticated);
  if (!s) who.textContent = '';
  else if (s.via === 'certificate') who.textContent = 'client certificate ' + s.user;
  else if (s.via === 'login') who.textContent = 'logged in as ' + s.user;
  else who.textContent = 'read-only';
  $('login').hidden = !(s && s.login_enabled && !canAct);
  $('logout').hidden = !(s && s.via === 'login');
  $('events-section').hidden = !(s && s.events);
  $('served-by').textContent = s ? s.node : '';
  for (const id of ['switchover', 'pause', 'resume', 'clear-error']) {
    $(id).title = canAct ? '' : 'needs a client certificate or a login';
  }
}

function showResult(ok, text) {
  const r = $('action-result');
  r.textContent = text;
  r.className = ok ? 'ok' : 'bad';
}

async function loadSession() {
  try {
    state.session = await getJson('/ui/api/session');
  } catch (e) {
    state.session = null;
  }
  renderSession();
}

async function act(action, body) {
  const csrf = state.session && state.session.csrf;
  const r = await postJson('/ui/api/' + action, body, csrf);
  const doc = r.doc || {};
  if (r.ok) {
    showResult(true, action + ': ' + (doc.message || doc.result || 'ok'));
  } else {
    showResult(false, action + ' refused (HTTP ' + r.status + '): ' + (doc.error || '') +
      (doc.fix ? ' — ' + doc.fix : ''));
  }
  poll();
}

function wireActions() {
  $('switchover').addEventListener('click', () => {
    const to = $('switchover-to').value;
    act('switchover', to ? { to } : {});
  });
  $('pause').addEventListener('click', () => act('pause', {}));
  $('resume').addEventListener('click', () => act('resume', {}));
  $('clear-error').addEventListener('click', () =>
    act('clear-error', { node: state.session ? state.session.node : '' }));
  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = await postJson('/ui/api/login',
      { user: $('login-user').value, password: $('login-password').value });
    $('login-password').value = '';
    if (r.ok) {
      showResult(true, 'logged in as ' + r.doc.user);
    } else {
      showResult(false, 'login refused (HTTP ' + r.status + '): ' + ((r.doc && r.doc.error) || ''));
    }
    await loadSession();
  });
  $('logout').addEventListener('click', async () => {
    await postJson('/ui/api/logout', {}, state.session && state.session.csrf);
    showResult(true, 'logged out');
    await loadSession();
  });
}

// ---- polling ----

async function pollEvents() {
  if (!state.session || !state.session.events) return;
  try {
    const doc = await getJson('/v1/events?since=' + state.eventsNext + '&limit=100');
    for (const e of doc.events || []) state.events.push(e);
    if (state.events.length > 200) state.events.splice(0, state.events.length - 200);
    if (typeof doc.next === 'number') state.eventsNext = doc.next;
    renderEvents();
  } catch (e) {
    // Shown by the connection line; the next poll tries again.
  }
}

async function poll() {
  if (state.polling) return;
  state.polling = true;
  const conn = $('conn');
  try {
    const st = await getJson('/v1/status');
    const now = Date.now();
    state.status = st;
    $('cluster').textContent = st.cluster || '';
    renderSummary(st);
    renderMembers(st);
    renderAlarms(st);
    renderOperations(st);
    renderHistory(st);
    renderCerts(st);
    recordLag(st, now);
    drawLag(now);
    await pollEvents();
    $('updated').textContent = new Date(now).toLocaleTimeString();
    conn.textContent = 'live';
    conn.className = 'conn ok';
    document.body.dataset.primary = st.primary || '';
  } catch (e) {
    conn.textContent = 'cannot reach the agent (' + e.message + '); retrying';
    conn.className = 'conn bad';
  } finally {
    state.polling = false;
  }
}

document.addEventListener('DOMContentLoaded', async () => {
  wireActions();
  await loadSession();
  await poll();
  setInterval(poll, POLL_MS);
});
