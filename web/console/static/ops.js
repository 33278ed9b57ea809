// The operator view: GET /console/api/ops (admin agents' bearer token,
// the console's from sessionStorage) every 3 seconds, drawn as tables.
import { el, $, clear, when } from './dom.js';

const TOKEN_KEY = 'chatgate.console.token';
let token = sessionStorage.getItem(TOKEN_KEY);
let timer = null;

function rows(id, list, cells, empty) {
  const tb = $(id);
  clear(tb);
  if (!list.length) {
    tb.append(el('tr', {}, el('td', { colspan: '5', class: 'muted' }, empty)));
    return;
  }
  for (const item of list) tb.append(el('tr', {}, ...cells(item).map((c) => el('td', {}, c))));
}

function draw(v) {
  const relay = Object.entries(v.relay || {}).sort();
  rows('relay-rows', relay, ([name, s]) => [
    name,
    el('span', { class: s.connected ? 'up' : 'down' }, s.connected ? 'connected' : 'disconnected'),
    String(s.queued), String(s.reconnects), s.last_error ? `${s.last_error} (${when(s.last_error_at)})` : '',
  ], 'No relay connectors configured.');
  const w = v.webhooks || {};
  $('hooks-summary').textContent = w.enabled
    ? `${(w.registered || []).length} registered, ${(w.pending || []).length} pending, ${(w.exhausted || []).length} given up.`
    : 'Webhooks are disabled.';
  $('retry-button').hidden = !w.enabled;
  $('revive-button').hidden = !w.enabled || !(w.exhausted || []).length;
  rows('hook-rows', w.registered || [], (h) => [h.action, h.url, h.id], 'None registered.');
  rows('pending-rows', w.pending || [], (p) => [p.action, String(p.attempts), when(p.next_at), p.last_error || ''], 'Nothing waiting.');
  rows('exhausted-rows', w.exhausted || [], (p) => [p.action, String(p.attempts), when(p.exhausted_at), p.last_error || ''], 'None.');
  const m = v.email || {};
  $('mail-summary').textContent = m.enabled
    ? `Transcripts and offline messages: ${(m.pending || []).length} waiting, ${(m.exhausted || []).length} given up.`
    : 'E-mail is not configured (smtp.host).';
  rows('mail-rows', [...(m.pending || []).map((p) => ['waiting', p]), ...(m.exhausted || []).map((p) => ['given up', p])],
    ([state, p]) => [p.kind, state, String(p.attempts), when(p.next_at), p.last_error || ''], 'Nothing waiting.');
  const c = v.conversations || {};
  $('conv-summary').textContent = `${c.queued || 0} queued, ${c.open || 0} open with agents here.`;
  rows('queue-rows', v.queues || [], (q) => [q.name ? `${q.name} (${q.department})` : q.department, String(q.queued)], 'No departments.');
  // On PostgreSQL the deployment's counts (every node) come from the
  // store; this node's own count stands beside them.
  const all = c.by_source_all;
  $('source-all-col').hidden = !all;
  const keys = [...new Set([...Object.keys(c.by_source || {}), ...Object.keys(all || {})])].sort();
  rows('source-rows', keys, (k) => [k, ...(all ? [String(all[k] || 0)] : []), String((c.by_source || {})[k] || 0)], 'No active conversations.');
  rows('agent-rows', v.agents || [], (a) => [`${a.name} (${a.id})`, a.status.replace(/_/g, ' '), String(a.open), a.max_chats ? String(a.max_chats) : 'no limit'], 'No agents.');
  const dl = $('store-details');
  clear(dl);
  const s = v.store || {};
  for (const [k, val] of [['Node', v.node], ['Backend', s.backend], ['Data file', s.path || '—'], ['Size', s.size_bytes ? `${(s.size_bytes / 1024).toFixed(0)} KiB` : '—'],
    ['Last commit', s.commits ? `${s.last_commit_ms.toFixed(2)} ms (${s.commits} commits since start)` : 'none yet']]) {
    dl.append(el('dt', {}, k), el('dd', {}, val || ''));
  }
  $('ops-updated').textContent = `Updated ${new Date(v.generated_at).toLocaleTimeString()}`;
}

async function load() {
  try {
    const r = await fetch('/console/api/ops', { headers: { Authorization: `Bearer ${token}` } });
    const j = await r.json().catch(() => ({}));
    if (r.status === 401 || r.status === 403) {
      clearInterval(timer);
      $('ops-body').hidden = true;
      $('ops-login').hidden = false;
      $('ops-error').textContent = j.error || 'Not allowed.';
      return;
    }
    if (!r.ok) throw new Error(j.error || `HTTP ${r.status}`);
    $('ops-error').textContent = '';
    $('ops-login').hidden = true;
    $('ops-body').hidden = false;
    draw(j);
  } catch (e) {
    $('ops-error').textContent = `Cannot read the operator view: ${e.message}`;
  }
}

function begin() {
  clearInterval(timer);
  load();
  timer = setInterval(load, 3000);
}

$('ops-login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('ops-token').value.trim();
  $('ops-token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  begin();
});

// webhookAction posts one of the operator's webhook actions and says how
// many deliveries it moved.
async function webhookAction(path, key, said) {
  try {
    const r = await fetch(path, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || `HTTP ${r.status}`);
    $('ops-updated').textContent = said(j[key]);
    setTimeout(load, 500);
  } catch (e) {
    $('ops-error').textContent = `Retry failed: ${e.message}`;
  }
}

$('retry-button').addEventListener('click', () => webhookAction('/console/api/ops/retry_webhooks', 'retried',
  (n) => `Retrying ${n} deliveries now`));
$('revive-button').addEventListener('click', () => webhookAction('/console/api/ops/revive_webhooks', 'revived',
  (n) => `Retrying ${n} given-up deliveries now, in order`));

if (token) begin();
else $('ops-login').hidden = false;
