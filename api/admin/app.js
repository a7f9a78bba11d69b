// The admin dashboard: plain JavaScript, no build step. Talks to the /v1
// API with the admin's key (sessionStorage); every value from the server is
// put in the page as text, never as HTML.
'use strict';

const KEY = 'jobs.apiKey';
const STATES = ['scheduled', 'queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled'];
const QUEUES = ['email', 'processing', 'webhooks'];
const FINAL = new Set(['succeeded', 'dead', 'cancelled']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let pollTimer = null;   // the current view's refresh
let refreshNow = () => {};
let healthTimer = null; // the platform's health banner, on every view
let renderToken = 0;    // a view started later wins over an older one's late answers
let historyRange = 'hour';

// ---- DOM helpers ----
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v;  // the CSP refuses style attributes, not CSSOM
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}
function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}
// A refusal shown where its data would be (an operator_only 403 would
// otherwise leave an empty table and a line in the browser's console).
function problemText(e) {
  const p = e.problem;
  return p && p.title && p.detail ? `${p.title}: ${p.detail}` : e.message;
}
function problemNode(tag, e, attrs = {}) {
  return h(tag, { class: 'error', role: 'alert', 'data-problem': (e.problem && e.problem.code) || String(e.status || ''), ...attrs },
    problemText(e));
}
function stateBadge(s) { return h('span', { class: `state state-${s}`, 'data-state': s }, s); }
function fmtTime(t) { return t ? new Date(t).toLocaleString() : ''; }
function fmtAge(s) {
  if (!s) return '0 s';
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
function fmtDuration(a, b) {
  if (!a || !b) return '';
  const ms = new Date(b) - new Date(a);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

// ---- API ----
class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}
async function api(path, { method = 'GET', body } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (res.status === 401) { signOut('The key was refused (unknown, revoked or expired).'); throw new ApiError(401, data); }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// ---- the platform's health ----
// What GET /readyz says, in words, while the API cannot take work to run
// now: submissions get 503 then, and an admin should see why without
// opening RabbitMQ's or PostgreSQL's own consoles.
const BROKER_STATES = {
  unreachable: 'RabbitMQ is unreachable: submissions to run now are refused (503); scheduled jobs are still accepted.',
  blocked: 'RabbitMQ refuses new messages under a memory or disk alarm: submissions to run now are refused (503) until it clears; scheduled jobs are still accepted.',
  stalled: 'RabbitMQ has stopped confirming messages (frozen or overloaded): submissions to run now are refused (503) until it confirms again.',
};
function healthText(r) {
  if (!r) return 'The API did not answer its readiness check.';
  const parts = [];
  if (r.database === false) parts.push('PostgreSQL does not answer: submissions and reads fail (503).');
  if (r.broker_state && r.broker_state !== 'accepting')
    parts.push(BROKER_STATES[r.broker_state] || `RabbitMQ: ${r.broker_state}.`);
  return parts.join(' ');
}
async function checkHealth() {
  let r = null;
  try {
    const res = await fetch('/readyz', { cache: 'no-store' });
    r = await res.json();
  } catch (e) {
    r = null;
  }
  const el = $('#health');
  const text = healthText(r);
  el.textContent = text;
  el.hidden = !text;
  el.dataset.broker = (r && r.broker_state) || '';
  el.dataset.database = r ? String(r.database) : '';
}
let healthToken = 0;     // a newer watch (or a sign-out) ends an older one
function stopHealth() {
  healthToken++;
  clearTimeout(healthTimer);
  $('#health').hidden = true;
}
function watchHealth() {
  stopHealth();
  const token = healthToken;
  const tick = async () => {
    await checkHealth();
    if (token === healthToken) healthTimer = setTimeout(tick, 3000);
    else $('#health').hidden = true;
  };
  healthTimer = setTimeout(tick, 0);
}

// ---- sign in ----
function signOut(message) {
  sessionStorage.removeItem(KEY);
  stopPolling();
  stopHealth();
  $('#nav').hidden = true;
  $('#view').replaceChildren();
  $('#login').hidden = false;
  $('#login-error').textContent = message || '';
}
async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const me = await api('/v1/admin/settings');
    $('#who').textContent = `tenant ${me.tenant} · ${me.role}`;
    const link = $('#broker-link');
    link.hidden = !me.broker_ui_url;
    if (me.broker_ui_url) link.href = me.broker_ui_url;
    $('#login').hidden = true;
    $('#nav').hidden = false;
    watchHealth();
    route();
  } catch (e) {
    if (e.status === 403) signOut('This key is not an admin key: the dashboard needs a key with the admin role.');
    else if (e.status !== 401) signOut(`Could not sign in: ${e.message}`);
  }
}

// ---- routing ----
function stopPolling() { clearTimeout(pollTimer); pollTimer = null; }
// Runs fn now and every ms while the view lasts; refreshNow() runs it at
// once (after an action), or right after the run in flight.
function poll(fn, ms) {
  stopPolling();
  const token = renderToken;
  let busy = false, again = false;
  const tick = async () => {
    if (token !== renderToken) return;
    if (busy) { again = true; return; }
    busy = true;
    clearTimeout(pollTimer);
    try { await fn(); } catch (e) { if (e.status !== 401) console.warn(e); }
    busy = false;
    if (token !== renderToken) return;
    if (again) { again = false; tick(); return; }
    pollTimer = setTimeout(tick, ms);
  };
  refreshNow = tick;
  tick();
}
function route() {
  if (!sessionStorage.getItem(KEY)) { signOut(); return; }
  renderToken++;
  stopPolling();
  const [path, qs] = (location.hash.slice(1) || '/overview').split('?');
  const params = new URLSearchParams(qs || '');
  const parts = path.split('/').filter(Boolean);
  for (const a of document.querySelectorAll('[data-nav]'))
    a.classList.toggle('active', a.dataset.nav === parts[0] || (parts[0] === 'job' && a.dataset.nav === 'jobs'));
  if (parts[0] === 'jobs') jobsView(params);
  else if (parts[0] === 'job' && parts[1]) jobView(parts[1]);
  else overviewView();
}

// ---- overview ----
function overviewView() {
  const view = $('#view');
  const rangeButtons = ['hour', 'day', 'week'].map((r) =>
    h('button', { type: 'button', 'data-range': r, class: r === historyRange ? 'on' : '',
                  onclick: () => { historyRange = r; overviewView(); } }, `last ${r}`));
  view.replaceChildren(
    h('h2', {}, 'Queues'),
    h('div', { class: 'table-wrap card' }, h('table', { id: 'queues-table' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'queue'), h('th', { class: 'num' }, 'ready'), h('th', { class: 'num' }, 'unacked'),
        h('th', { class: 'num' }, 'running'), h('th', { class: 'num hide-sm' }, 'scheduled'),
        h('th', { class: 'num hide-sm' }, 'consumers'), h('th', { class: 'num hide-sm' }, 'workers'),
        h('th', { class: 'num' }, 'in/s'), h('th', { class: 'num' }, 'out/s'),
        h('th', { class: 'num' }, 'oldest'), h('th', { class: 'num hide-sm' }, 'ok 5 min'),
        h('th', { class: 'num hide-sm' }, 'failed 5 min'), h('th', {}, ''))),
      h('tbody', {}))),
    h('p', { class: 'muted', id: 'queues-note' }),
    h('div', { class: 'actions seg' }, h('h3', { style: 'margin:0' }, 'History'), ...rangeButtons),
    h('div', { class: 'grid', id: 'charts' }));
  const token = renderToken;
  poll(async () => {
    const [mine, broker] = await Promise.all([
      api('/v1/admin/queues').catch((e) => e),
      api('/v1/queues').catch(() => null),   // the supervisor's broker view, when present
    ]);
    if (token !== renderToken) return;
    if (mine instanceof Error) {
      if (mine.status === 401) return;  // signed out already
      const columns = $('#queues-table thead tr').children.length;
      $('#queues-table tbody').replaceChildren(h('tr', {}, problemNode('td', mine, { colspan: columns })));
      $('#queues-note').textContent = '';
      return;
    }
    renderQueues(mine, broker);
  }, 2000);
  loadHistory(token);
}

function renderQueues(mine, broker) {
  const byName = {};
  for (const q of (broker && broker.queues) || []) byName[q.name] = q;
  const rows = mine.queues.map((q) => {
    const b = byName[q.name] || {};
    const w = b.workers;
    const cell = (field, value, cls = 'num') => h('td', { class: cls, 'data-field': field }, value);
    const button = q.paused
      ? h('button', { type: 'button', 'data-action': 'resume', onclick: () => setPaused(q.name, false) }, 'Resume')
      : h('button', { type: 'button', 'data-action': 'pause', onclick: () => setPaused(q.name, true) }, 'Pause');
    return h('tr', { 'data-queue': q.name, 'data-paused': String(q.paused) },
      h('td', {}, h('a', { href: `#/jobs?queue=${q.name}` }, q.name),
        q.paused ? h('span', { class: 'badge-paused', 'data-field': 'paused' }, 'paused') : null),
      cell('ready', b.ready ?? q.ready), cell('unacked', b.unacked ?? '–'),
      cell('running', q.running), cell('scheduled', q.scheduled, 'num hide-sm'),
      cell('consumers', b.consumers ?? '–', 'num hide-sm'),
      // Without a live supervisor `running` is the broker's consumers and
      // nobody acts on `desired` (as jobsctl queues says).
      cell('workers', !w ? '–' : w.supervised === false ? `${w.running} (no supervisor)`
        : `${w.running}/${w.desired} (${w.min}–${w.max})`, 'num hide-sm'),
      cell('in', q.in_per_s), cell('out', b.completed_per_s ?? q.out_per_s),
      cell('oldest', fmtAge(b.oldest_waiting_age_s ?? q.oldest_waiting_age_s)),
      cell('succeeded', q.last_5m.succeeded, 'num hide-sm'), cell('failed', q.last_5m.failed, 'num hide-sm'),
      h('td', {}, button));
  });
  $('#queues-table tbody').replaceChildren(...rows);
  $('#queues-note').textContent = `Updated ${new Date(mine.sampled_at).toLocaleTimeString()}. ` +
    (broker ? 'Ready, unacked and consumers from RabbitMQ.' : 'Ready counts from PostgreSQL (queued jobs).') +
    (broker && broker.dead_letters ? ` ${broker.dead_letters} dead letter${broker.dead_letters === 1 ? '' : 's'} kept in jobs.dead.` : '');
}

async function setPaused(queue, paused) {
  try {
    const r = await api(`/v1/admin/queues/${queue}/${paused ? 'pause' : 'resume'}`, { method: 'POST' });
    if (r.changed === false) toast(`${queue} already was ${paused ? 'paused' : 'running'}: nothing changed`);
    else toast(`${queue} ${paused ? 'paused: its workers stop taking jobs' : 'resumed'}`);
    route();
  } catch (e) { toast(`Failed: ${e.message}`); }
}

async function loadHistory(token) {
  const data = await api(`/v1/admin/history${query({ range: historyRange })}`).catch((e) => e);
  if (token !== renderToken) return;
  if (data instanceof Error) {
    if (data.status !== 401) $('#charts').replaceChildren(problemNode('p', data));
    return;
  }
  const charts = QUEUES.map((q) => {
    const points = data.queues[q] || [];
    const res = data.resolution_s;
    return h('div', { class: 'card chart', 'data-chart': q },
      h('strong', {}, q),
      lineChart(points, [
        { label: 'ready', color: '#b7791f', value: (p) => p.ready },
        { label: 'running', color: '#2b59c3', value: (p) => p.running },
      ]),
      lineChart(points, [
        { label: 'done/s', color: '#1f8a4c', value: (p) => (p.succeeded + p.dead + p.cancelled) / res },
        { label: 'failed/s', color: '#c0392b', value: (p) => (p.failed + p.dead) / res },
        { label: 'in/s', color: '#687083', value: (p) => p.submitted / res },
      ]));
  });
  $('#charts').replaceChildren(...charts);
  // History moves every 10 s at most.
  setTimeout(() => { if (token === renderToken) loadHistory(token); }, 10000);
}

function lineChart(points, series) {
  const W = 300, H = 100, pad = 2;
  const box = svg('svg', { viewBox: `0 0 ${W} ${H + 12}`, preserveAspectRatio: 'none', role: 'img' });
  const max = Math.max(1, ...points.flatMap((p) => series.map((s) => s.value(p))));
  const t0 = points.length ? new Date(points[0].t).getTime() : 0;
  const t1 = points.length ? new Date(points[points.length - 1].t).getTime() : 1;
  const x = (p) => pad + ((new Date(p.t).getTime() - t0) / Math.max(1, t1 - t0)) * (W - 2 * pad);
  const y = (v) => H - (v / max) * (H - pad);
  box.append(svg('line', { x1: 0, y1: H, x2: W, y2: H, stroke: '#dde1e8' }));
  for (const s of series) {
    if (points.length < 2) continue;
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p).toFixed(1)},${y(s.value(p)).toFixed(1)}`).join('');
    box.append(svg('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' }));
  }
  const label = svg('text', { x: 2, y: H + 11, 'font-size': 9, fill: '#687083' });
  label.textContent = points.length < 2 ? 'no history yet' : `max ${+max.toFixed(2)}`;
  box.append(label);
  const legend = h('div', { class: 'legend' },
    series.map((s) => h('span', {}, h('i', { style: `background:${s.color}` }), s.label)));
  return h('div', {}, box, legend);
}

// ---- jobs ----
const FILTERS = ['queue', 'state', 'type', 'q', 'created_after', 'created_before'];

function jobsView(params) {
  const value = (k) => params.get(k) || '';
  const select = (name, options) => h('select', { name },
    h('option', { value: '' }, 'any'),
    options.map((o) => h('option', { value: o, selected: o === value(name) }, o)));
  // A time from the address as the form's UTC field shows it; one that is no
  // time leaves the field empty (the list then shows the API's refusal).
  const local = (iso) => {
    const t = iso ? new Date(iso) : null;
    return t && !Number.isNaN(t.getTime()) ? t.toISOString().slice(0, 16) : '';
  };
  const form = h('form', { id: 'filters', class: 'filters card', onsubmit: (e) => {
    e.preventDefault();
    const fd = new FormData(e.target);
    const p = {};
    for (const k of FILTERS) {
      let v = (fd.get(k) || '').trim();
      if (v && k.startsWith('created_')) v = new Date(`${v}Z`).toISOString();
      p[k] = v;
    }
    location.hash = `#/jobs${query(p)}`;
  } },
    h('label', {}, 'search (id, payload or error text)', h('input', { name: 'q', id: 'search-input', value: value('q'), placeholder: 'job id or text' })),
    h('label', {}, 'queue', select('queue', QUEUES)),
    h('label', {}, 'state', select('state', STATES)),
    h('label', {}, 'type', h('input', { name: 'type', value: value('type'), placeholder: 'e.g. noop' })),
    h('label', {}, 'created after (UTC)', h('input', { name: 'created_after', type: 'datetime-local', value: local(value('created_after')) })),
    h('label', {}, 'created before (UTC)', h('input', { name: 'created_before', type: 'datetime-local', value: local(value('created_before')) })),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'search', class: 'primary' }, 'Search'),
      h('a', { href: '#/jobs' }, 'clear')));
  const filter = {};
  for (const k of FILTERS) filter[k] = value(k);
  const cursor = value('cursor');
  $('#view').replaceChildren(
    h('h2', {}, 'Jobs'), form,
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'bulk-cancel', onclick: () => bulk('cancel', filter) }, 'Cancel all matching…'),
      h('button', { type: 'button', id: 'bulk-retry', onclick: () => bulk('retry', filter) }, 'Retry all matching…'),
      h('button', { type: 'button', id: 'bulk-requeue', onclick: () => bulk('requeue', filter),
        title: 'Publish the queued jobs matching again: for a broker that lost their messages (a purged queue, a lost volume). A job whose message still exists runs once all the same.' },
        'Requeue all matching…'),
      h('span', { id: 'bulk-result', class: 'muted' })),
    h('div', { class: 'table-wrap card' }, h('table', { id: 'jobs-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'id'), h('th', {}, 'queue'), h('th', {}, 'type'),
        h('th', {}, 'state'), h('th', { class: 'num' }, 'attempts'), h('th', { class: 'hide-sm' }, 'created'),
        h('th', { class: 'hide-sm' }, 'finished'), h('th', { class: 'hide-sm' }, 'error'))),
      h('tbody', {}))),
    h('div', { class: 'actions' },
      cursor ? h('a', { href: `#/jobs${query(filter)}`, id: 'first-page' }, '« newest') : null,
      h('a', { id: 'next-page', hidden: true }, 'older »')));
  const token = renderToken;
  poll(async () => {
    let data;
    try {
      data = await api(`/v1/jobs${query({ ...filter, cursor, limit: 50 })}`);
    } catch (e) {
      // A refused filter or cursor (a stale link), or a server away: said
      // where the jobs would be, not only in the console.
      if (e.status === 401 || token !== renderToken) throw e;
      $('#jobs-table tbody').replaceChildren(h('tr', {}, problemNode('td', e, { colspan: 8 })));
      $('#next-page').hidden = true;
      return;
    }
    if (token !== renderToken) return;
    const rows = data.jobs.map((j) => h('tr', { 'data-id': j.id },
      h('td', { class: 'mono' }, h('a', { href: `#/job/${j.id}` }, j.id)),
      h('td', {}, j.queue), h('td', {}, j.type), h('td', {}, stateBadge(j.state)),
      h('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`),
      h('td', { class: 'hide-sm' }, fmtTime(j.created_at)), h('td', { class: 'hide-sm' }, fmtTime(j.finished_at)),
      h('td', { class: 'wrap hide-sm' }, j.error || '')));
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No job matches.')));
    $('#jobs-table tbody').replaceChildren(...rows);
    const next = $('#next-page');
    next.hidden = !data.next_cursor;
    if (data.next_cursor) next.href = `#/jobs${query({ ...filter, cursor: data.next_cursor })}`;
  }, 3000);
}

function confirmDialog(text) {
  return new Promise((resolve) => {
    const box = $('#confirm');
    $('#confirm-text').textContent = text;
    box.hidden = false;
    const done = (ok) => { box.hidden = true; $('#confirm-ok').onclick = null; $('#confirm-cancel').onclick = null; resolve(ok); };
    $('#confirm-ok').onclick = () => done(true);
    $('#confirm-cancel').onclick = () => done(false);
  });
}

async function bulk(action, filter) {
  const out = $('#bulk-result');
  try {
    const { matched, as_of } = await api(`/v1/admin/jobs/${action}${query({ ...filter, dry_run: 'true' })}`, { method: 'POST' });
    const what = Object.entries(filter).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(', ') || 'no filter: every job';
    if (!matched) { out.textContent = `No job to ${action} matches (${what}).`; return; }
    const verb = { cancel: 'Cancel', retry: 'Retry', requeue: 'Publish again' }[action];
    if (!(await confirmDialog(`${verb} ${matched} job${matched === 1 ? '' : 's'} matching ${what}?`))) return;
    // Only the jobs that existed when they were counted: none submitted while
    // the dialog was open, even under a created_before filter later than that.
    const before = filter.created_before && new Date(filter.created_before) < new Date(as_of)
      ? filter.created_before : as_of;
    const r = await api(`/v1/admin/jobs/${action}${query({ ...filter, created_before: before })}`, { method: 'POST' });
    const done = { cancel: 'Cancelled', retry: 'Retried', requeue: 'Published again' }[action];
    out.textContent = `${done} ${r.applied} job${r.applied === 1 ? '' : 's'}` +
      (r.complete ? '.' : ' (more remain: run it again).');
    out.dataset.applied = r.applied;
    refreshNow();  // the table shows the jobs as they are now
  } catch (e) { out.textContent = `Failed: ${e.message}`; }
}

// ---- one job ----
function jobView(id) {
  const view = $('#view');
  if (!UUID.test(id)) { view.replaceChildren(h('p', { class: 'error' }, 'Not a job id.')); return; }
  view.replaceChildren(h('h2', {}, 'Job ', h('span', { class: 'mono' }, id)), h('div', { id: 'job' }, 'Loading…'));
  const token = renderToken;
  poll(async () => {
    let job, events;
    try {
      [job, events] = await Promise.all([api(`/v1/jobs/${id}`), api(`/v1/jobs/${id}/events`)]);
    } catch (e) {
      if (e.status === 404) { $('#job').replaceChildren(h('p', { class: 'error' }, 'No job with this id in your tenant.')); return; }
      if (e.status === 401 || token !== renderToken) throw e;
      $('#job').replaceChildren(problemNode('p', e));
      return;
    }
    if (token !== renderToken) return;
    renderJob(job, events.events);
  }, 1500);
}

function renderJob(j, events) {
  const act = async (what) => {
    try {
      await api(`/v1/jobs/${j.id}/${what}`, { method: 'POST' });
      toast(`${what === 'retry' ? 'Retry' : 'Cancel'} requested`);
      route();
    } catch (e) { toast(`Failed: ${e.message}`); }
  };
  const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v ?? '')];
  const attempts = (j.attempt_history || []).map((a) => h('tr', {},
    h('td', { class: 'num' }, a.life > 1 ? `${a.attempt} (life ${a.life})` : a.attempt), h('td', {}, stateBadge(a.outcome)), h('td', { class: 'mono' }, a.worker_id),
    h('td', {}, fmtTime(a.started_at)), h('td', { class: 'num' }, fmtDuration(a.started_at, a.finished_at)),
    h('td', { class: 'wrap' }, a.error || '')));
  $('#job').replaceChildren(
    h('div', { class: 'actions' }, h('span', { id: 'job-state' }, stateBadge(j.state)),
      h('button', { type: 'button', id: 'retry-btn', disabled: !['dead', 'failed'].includes(j.state), onclick: () => act('retry') }, 'Retry'),
      h('button', { type: 'button', id: 'cancel-btn', class: 'danger', disabled: FINAL.has(j.state), onclick: () => act('cancel') }, 'Cancel'),
      h('a', { href: `#/jobs${query({ queue: j.queue })}` }, `all ${j.queue} jobs`)),
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('dl', { class: 'kv' },
        kv('queue', j.queue), kv('type', j.type), kv('priority', j.priority),
        kv('attempts', `${j.attempts} of ${j.max_attempts}${j.life > 1 ? ` (life ${j.life}: retried ${j.life - 1}×)` : ''}`), kv('worker', j.worker_id),
        kv('created', fmtTime(j.created_at)), kv('run at', fmtTime(j.run_at)), kv('started', fmtTime(j.started_at)),
        kv('finished', fmtTime(j.finished_at)), kv('error', j.error))),
      h('div', { class: 'card' }, h('h3', { style: 'margin-top:0' }, 'Timeline'),
        h('ol', { class: 'timeline', id: 'timeline' }, events.map((e) => h('li', { 'data-to': e.to },
          h('span', { class: 'muted' }, fmtTime(e.at)), ' ', e.from ? `${e.from} → ` : 'created ', stateBadge(e.to),
          e.worker_id ? h('span', { class: 'muted mono' }, ` ${e.worker_id}`) : null))))),
    h('h3', {}, 'Payload'), h('pre', { id: 'payload' }, JSON.stringify(j.payload, null, 2)),
    h('h3', {}, 'Result'), h('pre', { id: 'result' }, j.result === null ? '—' : JSON.stringify(j.result, null, 2)),
    h('h3', {}, 'Attempts'),
    h('div', { class: 'table-wrap card' }, h('table', { id: 'attempts' },
      h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), h('th', {}, 'outcome'), h('th', {}, 'worker'),
        h('th', {}, 'started'), h('th', { class: 'num' }, 'took'), h('th', {}, 'error'))),
      h('tbody', {}, attempts.length ? attempts : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No attempt finished yet.'))))));
}

// ---- start ----
window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('#key-input').value.trim();
    $('#key-input').value = '';
    if (key) signIn(key);
  });
  $('#logout').addEventListener('click', () => signOut('Signed out.'));
  if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
  else signOut();
});
