// The demo page: loads the Rocket.Chat widget (as Rocket.Chat's
// installation snippet does, but from this file, not an inline script)
// and runs a small LiveChat v2 visitor widget over the v2 REST API.
import { el, $, clear } from './dom.js';

const data = document.body.dataset;

if (data.widget === 'true') {
  const base = `${location.origin}/livechat`;
  window.RocketChat = function (c) { window.RocketChat._.push(c); };
  window.RocketChat._ = [];
  window.RocketChat.url = base;
  const s = document.createElement('script');
  s.async = true;
  s.src = `${base}/rocketchat-livechat.min.js?_=201903270000`;
  document.head.append(s);
}

// ---- LiveChat v2 visitor widget -------------------------------------------------

const KEY = 'chatgate.demo.v2';
const licence = data.licence;
let state = JSON.parse(sessionStorage.getItem(KEY) || 'null'); // {visitor, sid, last}
let timer = null;
const shown = new Set();

async function v2(method, path, params) {
  const q = new URLSearchParams({ licence_id: licence, ...params });
  const url = `/visitors/${encodeURIComponent(state.visitor)}/chat/${path}`;
  const r = method === 'GET'
    ? await fetch(`${url}?${q}`, { headers: { 'X-API-Version': '2' } })
    : await fetch(url, { method, headers: { 'X-API-Version': '2', 'Content-Type': 'application/x-www-form-urlencoded' }, body: q });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || `HTTP ${r.status}`);
  return j;
}

function save() { sessionStorage.setItem(KEY, JSON.stringify(state)); }

function show(ev) {
  if (shown.has(ev.message_id)) return;
  shown.add(ev.message_id);
  const ol = $('v2-messages');
  let li;
  if (ev.type === 'message') {
    const who = ev.user_type === 'visitor' ? 'You' : (ev.author_name || 'Agent');
    li = el('li', { class: ev.user_type === 'visitor' ? 'me' : '' }, el('strong', {}, `${who}: `), ev.text);
  } else if (ev.type === 'attachment') {
    const url = (ev.files || [])[0];
    const who = ev.user_type === 'visitor' ? 'You' : 'Agent';
    const link = url && /^(https?:)?\//.test(url) ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, ev.text || 'file') : (ev.text || 'file');
    li = el('li', { class: ev.user_type === 'visitor' ? 'me' : '' }, el('strong', {}, `${who} sent a file: `), link);
  } else if (ev.type === 'agent_details') {
    li = el('li', { class: 'sys' }, `${(ev.agent && ev.agent.name) || 'An agent'} joined the chat`);
  } else if (ev.type === 'chat_closed') {
    li = el('li', { class: 'sys' }, 'The chat was closed.');
    stop('Chat ended.');
  } else {
    return;
  }
  ol.append(li);
  ol.scrollTop = ol.scrollHeight;
}

async function poll() {
  try {
    const q = { secured_session_id: state.sid };
    if (state.last) q.last_message_id = String(state.last);
    const r = await v2('GET', 'get_pending_messages', q);
    for (const ev of r.events || []) {
      show(ev);
      if (ev.message_id > (state.last || 0)) state.last = ev.message_id;
    }
    save();
    $('v2-status').textContent = '';
  } catch (e) {
    $('v2-status').textContent = `Connection problem: ${e.message}`;
  }
}

function running() {
  $('v2-start').hidden = true;
  $('v2-messages').hidden = false;
  $('v2-send').hidden = false;
  clearInterval(timer);
  timer = setInterval(poll, 2000);
  poll();
}

function stop(msg) {
  clearInterval(timer);
  $('v2-send').hidden = true;
  $('v2-status').textContent = msg;
  const again = el('button', { type: 'button', onclick: () => {
    sessionStorage.removeItem(KEY);
    state = null;
    shown.clear();
    clear($('v2-messages'));
    $('v2-messages').hidden = true;
    $('v2-start').hidden = false;
    $('v2-status').textContent = '';
  } }, 'Start a new chat');
  $('v2-status').append(' ', again);
  state && (state.ended = true, save());
}

if ($('v2-start')) {
  $('v2-start').addEventListener('submit', async (e) => {
    e.preventDefault();
    state = { visitor: `demo-${crypto.randomUUID()}`, sid: '', last: 0 };
    try {
      const p = { welcome_message: 'Hello! An agent will be with you shortly.', name: $('v2-name').value };
      if ($('v2-email').value) p.email = $('v2-email').value;
      const r = await v2('POST', 'start', p);
      if (r.banned) throw new Error('you cannot start chats at the moment');
      state.sid = r.secured_session_id;
      save();
      await v2('POST', 'send_message', { secured_session_id: state.sid, message: $('v2-first').value });
      running();
    } catch (err) {
      $('v2-status').textContent = `Could not start the chat: ${err.message}`;
      state = null;
    }
  });
  $('v2-send').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('v2-text').value;
    if (!t.trim()) return;
    try {
      await v2('POST', 'send_message', { secured_session_id: state.sid, message: t });
      $('v2-text').value = '';
      poll();
    } catch (err) {
      $('v2-status').textContent = `Not sent: ${err.message}`;
    }
  });
  $('v2-close').addEventListener('click', async () => {
    try { await v2('POST', 'close', { secured_session_id: state.sid }); } catch { /* closed anyway */ }
    poll();
    stop('Chat ended.');
  });
  if (state && state.sid && !state.ended) running();
}
