// The agent console: a client of chatgate's LiveChat Agent Chat API RTM.
// State lives in `chats` (chat id → chat, each with its current thread's
// events by id, so that a resync after a reconnect shows nothing twice).
// Everything a visitor controls is written with textContent (dom.js).

import { RTM, uploadFile } from './rtm.js';
import { el, $, clear, when, safeURL } from './dom.js';

const TOKEN_KEY = 'chatgate.console.token';
const SOURCES = {
  'livechat.v2': 'LiveChat v2 widget',
  rocketchat: 'Rocket.Chat widget',
  'livechat.customer': 'LiveChat customer app',
  'livechat.agent.rtm': 'started by an agent',
};

const departments = JSON.parse(document.body.dataset.departments || '[]');
let rtm = null;
let token = null;
let me = null; // my_profile
const chats = new Map(); // chat id → chat
const names = new Map(); // user id → name, from every chat's users and system messages
let selected = null; // chat id
let unseenTotal = 0;
let typingTimer = null;
let typingSent = false;

// ---- login ------------------------------------------------------------------

function showLogin(message) {
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
  $('login-user').focus();
}

$('password-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  try {
    const r = await fetch('/console/api/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: $('login-user').value, password: $('login-password').value }),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || `login failed (${r.status})`);
    $('login-password').value = '';
    start(j.token);
  } catch (err) {
    $('login-error').textContent = err.message;
  }
});

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('login-token').value.trim();
  $('login-token').value = '';
  if (t) start(t);
});

$('logout-button').addEventListener('click', async () => {
  try { await rtm.call('logout'); } catch { /* gone anyway */ }
  rtm.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  chats.clear();
  selected = null;
  showLogin('Logged out.');
});

function start(t) {
  token = t;
  sessionStorage.setItem(TOKEN_KEY, t);
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  rtm = new RTM(t, {
    onLogin: resync,
    onPush: push,
    onState: (s) => {
      const text = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Connection lost; reconnecting…' }[s] || s;
      $('connection').textContent = text;
      $('connection').dataset.state = s;
    },
    onAuthFailed: () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('That token was not accepted. Log in again.');
    },
  });
  rtm.start();
}

// ---- resync -------------------------------------------------------------------

function chatOf(id) {
  let c = chats.get(id);
  if (!c) {
    c = { id, threadId: '', users: [], events: new Map(), unread: 0, active: false, queued: false, tags: [],
      source: null, typing: false, peek: '', archived: false, lastAt: '' };
    chats.set(id, c);
  }
  return c;
}

function customerOf(c) {
  return c.users.find((u) => u.type === 'customer') || { name: '', id: '' };
}

// isMine: I am among the chat's agents. An active chat served by others
// reaches this console only when I supervise its department (supervisors
// and admins: the agent API lists other agents' chats to them alone).
function isMine(c) {
  return !!me && c.users.some((u) => u.type === 'agent' && u.id === me.id);
}

function servingAgents(c) {
  return c.users.filter((u) => u.type === 'agent').map((u) => u.name || u.id).join(', ') || 'nobody';
}

function threadInto(c, users, thread, fresh) {
  if (users) c.users = users;
  for (const u of c.users) if (u.name) names.set(u.id, u.name);
  if (thread.id !== c.threadId) {
    c.events = new Map();
    c.threadId = thread.id;
  }
  c.active = !!thread.active;
  c.queued = !!thread.queue;
  c.tags = thread.tags || [];
  c.source = thread.chatgate_source || c.source;
  for (const e of thread.events || []) addEvent(c, e, fresh);
}

function addEvent(c, e, fresh) {
  if (c.events.has(e.id)) return false;
  const v = e.text_vars || {};
  if (v.agent_id && v.agent_name) names.set(v.agent_id, v.agent_name);
  c.events.set(e.id, e);
  if (e.created_at > c.lastAt) c.lastAt = e.created_at;
  const fromCustomer = e.author_id && e.author_id === customerOf(c).id;
  if (fresh && fromCustomer && (c.queued || isMine(c)) && (selected !== c.id || document.hidden)) {
    c.unread++;
    announce(`New message from ${customerOf(c).name || 'a visitor'}`, e.text || e.name || '');
  }
  return true;
}

async function resync(login) {
  me = login.my_profile;
  $('me').textContent = `${me.name} (${me.email || me.id})`;
  showRouting(me.routing_status);
  const admin = me.permission === 'administrator' || me.permission === 'owner';
  $('ops-link').hidden = !admin;
  const seen = new Set();
  for (const s of login.chats_summary || []) {
    seen.add(s.id);
    await loadChat(s.id, s.last_thread_summary && s.last_thread_summary.id, false);
  }
  // Chats shown before the reconnect that are no longer listed were closed
  // or transferred meanwhile: read them again (or drop them).
  for (const c of [...chats.values()]) {
    if (!seen.has(c.id) && c.active) await loadChat(c.id, c.threadId, false);
  }
  await loadArchives(false);
  render();
  if (selected && chats.has(selected)) openChat(selected);
}

async function loadChat(chatId, threadId, fresh) {
  try {
    const p = { chat_id: chatId };
    if (threadId) p.thread_id = threadId;
    const chat = await rtm.call('get_chat', p);
    threadInto(chatOf(chatId), chat.users, chat.thread, fresh);
  } catch (err) {
    // No longer ours (transferred away): forget it.
    chats.delete(chatId);
    if (selected === chatId) selected = null;
  }
}

async function loadArchives(show) {
  try {
    const r = await rtm.call('list_archives', { limit: 25 });
    for (const ch of r.chats || []) {
      const c = chats.get(ch.id);
      if (c && c.active) continue; // a newer, active thread is shown
      if (c && c.threadId && c.threadId !== ch.thread.id && c.lastAt > (ch.thread.created_at || '')) continue;
      const n = chatOf(ch.id);
      threadInto(n, ch.users, ch.thread, false);
      n.archived = true;
    }
    if (show) $('archives-button').textContent = `Archived chats: ${(r.chats || []).length} shown under Closed`;
  } catch (err) {
    if (show) $('archives-button').textContent = `Archived chats: ${err.message}`;
  }
}

$('archives-button').addEventListener('click', async () => {
  await loadArchives(true);
  render();
});

// ---- pushes --------------------------------------------------------------------

async function push(action, p) {
  switch (action) {
    case 'incoming_chat': {
      const c = chatOf(p.chat.id);
      const isNew = c.threadId !== p.chat.thread.id;
      threadInto(c, p.chat.users, p.chat.thread, false);
      c.archived = false;
      if (isNew && p.requester_id !== me.id) {
        c.unread = Math.max(c.unread, 1);
        announce(c.queued ? 'New chat waiting' : 'New chat', `${customerOf(c).name || 'A visitor'} (${sourceText(c)})`);
      }
      break;
    }
    case 'incoming_event': {
      const c = chats.get(p.chat_id);
      if (!c) {
        await loadChat(p.chat_id, p.thread_id, true);
        break;
      }
      if (p.thread_id !== c.threadId) {
        await loadChat(p.chat_id, p.thread_id, true);
        break;
      }
      addEvent(c, p.event, true);
      if (p.event.author_id === customerOf(c).id) {
        c.typing = false;
        c.peek = '';
      }
      break;
    }
    case 'chat_deactivated': {
      const c = chats.get(p.chat_id);
      if (c && c.threadId === p.thread_id) {
        c.active = false;
        c.queued = false;
        c.typing = false;
      }
      break;
    }
    case 'chat_transferred':
      await loadChat(p.chat_id, p.thread_id, false);
      break;
    case 'incoming_typing_indicator': {
      const c = chats.get(p.chat_id);
      if (c) {
        c.typing = !!p.typing_indicator.is_typing;
        if (!c.typing) c.peek = '';
      }
      break;
    }
    case 'incoming_sneak_peek': {
      const c = chats.get(p.chat_id);
      if (c) {
        c.typing = true;
        c.peek = p.sneak_peek.text || '';
      }
      break;
    }
    case 'routing_status_set':
      if (p.agent_id === me.id) showRouting(p.status);
      break;
    case 'customer_updated':
      for (const c of chats.values()) {
        const u = c.users.find((x) => x.id === p.id);
        if (u) {
          if (p.name !== undefined) u.name = p.name;
          if (p.email !== undefined) u.email = p.email;
          if (p.session_fields) u.session_fields = p.session_fields;
        }
      }
      break;
    case 'thread_tagged':
    case 'thread_untagged': {
      const c = chats.get(p.chat_id);
      if (c && c.threadId === p.thread_id) {
        c.tags = c.tags.filter((t) => t !== p.tag);
        if (action === 'thread_tagged') c.tags.push(p.tag);
      }
      break;
    }
    case 'agent_disconnected':
      $('connection').textContent = `Disconnected by the server (${p.reason || 'no reason'}); reconnecting…`;
      return;
    default:
      return;
  }
  render();
}

// ---- announcements --------------------------------------------------------------

let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.15, audio.currentTime);
    g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.4);
  } catch { /* no audio: the title and notification still say it */ }
}

function announce(title, body) {
  beep();
  if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
    try { new Notification(title, { body: String(body).slice(0, 140), tag: 'chatgate' }); } catch { /* ignore */ }
  }
  $('announcer').textContent = `${title}: ${String(body).slice(0, 140)}`;
}

$('notify-button').addEventListener('click', async () => {
  if (!('Notification' in window)) {
    $('notify-button').textContent = 'Notifications unavailable';
    return;
  }
  const p = await Notification.requestPermission();
  $('notify-button').textContent = p === 'granted' ? 'Notifications on' : 'Notifications blocked';
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && selected && chats.has(selected)) {
    chats.get(selected).unread = 0;
    renderList();
  }
});

// ---- routing status ----------------------------------------------------------

function showRouting(status) {
  const accepting = status === 'accepting_chats';
  $('routing-toggle').checked = accepting;
  $('routing-status').textContent = accepting ? 'Status: accepting chats' : 'Status: not accepting chats';
  $('routing-status').dataset.accepting = accepting ? 'yes' : 'no';
}

$('routing-toggle').addEventListener('change', async (e) => {
  const status = e.target.checked ? 'accepting_chats' : 'not_accepting_chats';
  try {
    await rtm.call('set_routing_status', { status, agent_id: me.id });
    showRouting(status);
  } catch (err) {
    showRouting(e.target.checked ? 'not_accepting_chats' : 'accepting_chats');
    alertError(err);
  }
});

// ---- rendering ---------------------------------------------------------------

function sourceText(c) {
  const s = c.source || {};
  let t = SOURCES[s.origin] || s.origin || 'unknown source';
  if (s.relayed_to) t += ` → relayed to ${s.relayed_to}`;
  return t;
}

function render() {
  renderList();
  if (selected && chats.has(selected)) renderChat(chats.get(selected));
  else {
    // No chat open (or it left this console): nor its visitor's details.
    $('chat-view').hidden = true;
    $('empty').hidden = false;
    for (const id of ['visitor-details', 'visitor-pages', 'visitor-history']) clear($(id));
  }
}

function renderList() {
  const groups = { queued: [], mine: [], others: [], closed: [] };
  unseenTotal = 0;
  for (const c of chats.values()) {
    if (!c.active) groups.closed.push(c);
    else if (c.queued) groups.queued.push(c);
    else if (isMine(c)) groups.mine.push(c);
    else {
      groups.others.push(c);
      c.unread = 0; // others' chats are watched, not answered: no unread count
      continue;
    }
    unseenTotal += c.unread;
  }
  $('others-section').hidden = groups.others.length === 0;
  for (const [name, list] of Object.entries(groups)) {
    list.sort((a, b) => (b.lastAt > a.lastAt ? 1 : -1));
    const ul = $(`${name}-list`);
    clear(ul);
    for (const c of list) ul.append(chatItem(c));
    $(`${name}-count`).textContent = list.length ? `(${list.length})` : '';
  }
  document.title = unseenTotal > 0 ? `(${unseenTotal}) chatgate console` : 'chatgate console';
}

function lastText(c) {
  const evs = [...c.events.values()];
  for (let i = evs.length - 1; i >= 0; i--) {
    const e = evs[i];
    if (e.type === 'message') return e.text;
    if (e.type === 'file') return `File: ${e.name}`;
  }
  return '';
}

function chatItem(c) {
  const cust = customerOf(c);
  const label = `${cust.name || 'Visitor'}, ${sourceText(c)}${c.unread ? `, ${c.unread} unread` : ''}`;
  const b = el('button', { type: 'button', class: 'chat-item', 'aria-label': label,
    'aria-current': selected === c.id ? 'true' : null, onclick: () => openChat(c.id) },
  el('span', { class: 'who' }, cust.name || 'Visitor'),
  c.unread ? el('span', { class: 'unread', 'aria-hidden': 'true' }, String(c.unread)) : null,
  el('span', { class: 'src' }, sourceText(c)),
  el('span', { class: 'last' }, lastText(c).slice(0, 80)));
  return el('li', {}, b);
}

function openChat(id) {
  selected = id;
  const c = chats.get(id);
  if (!c) return;
  c.unread = 0;
  renderList();
  renderChat(c);
  loadVisitor(c);
  if (c.active && !c.queued) {
    const last = [...c.events.values()].pop();
    if (last) rtm.call('mark_events_as_seen', { chat_id: c.id, seen_up_to: last.created_at }).catch(() => {});
  }
}

function authorName(c, id) {
  if (!id) return 'System';
  const u = c.users.find((x) => x.id === id);
  if (u) return u.name || (u.type === 'customer' ? 'Visitor' : id);
  if (id === (me && me.id)) return me.name;
  return names.get(id) || id;
}

function eventNode(c, e) {
  const cust = customerOf(c);
  const mineAgent = e.author_id && e.author_id !== cust.id;
  const note = e.visibility === 'agents' && e.type !== 'system_message';
  const cls = ['msg', e.type === 'system_message' ? 'system' : mineAgent ? 'agent' : 'visitor', note ? 'note' : ''].join(' ');
  const head = el('div', { class: 'meta' },
    el('span', { class: 'author' }, authorName(c, e.author_id)),
    note ? el('span', { class: 'note-label' }, 'Private note, agents only') : null,
    el('time', { datetime: e.created_at }, when(e.created_at)));
  const body = el('div', { class: 'body' });
  switch (e.type) {
    case 'message':
      body.textContent = e.text;
      break;
    case 'system_message':
      body.textContent = e.text || e.system_message_type;
      if (e.visibility === 'agents') body.append(el('span', { class: 'muted' }, ' (agents only)'));
      break;
    case 'file': {
      const url = safeURL(e.url);
      const name = e.name || 'file';
      if (url && /^image\//.test(e.content_type || '')) {
        body.append(el('img', { src: url, alt: `Image: ${name}`, class: 'inline-image' }));
      }
      body.append(url ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, `File: ${name}`) : `File: ${name}`);
      break;
    }
    case 'filled_form': {
      const dl = el('dl', { class: 'form' });
      for (const f of e.fields || []) {
        // v3.x fields carry answer/answers, the seed's value or checked
        // options; its title and information fields are layout only.
        const a = fieldAnswer(f);
        if (a === null) continue;
        dl.append(el('dt', {}, f.label || f.name || f.id || ''), el('dd', {}, a));
      }
      const kind = e.form_type || e.form_id;
      body.append(el('div', { class: 'form-title' }, kind ? `Filled form: ${kind}` : 'Filled form'), dl);
      break;
    }
    case 'rich_message': {
      const list = el('ul', { class: 'rich' });
      for (const x of e.elements || []) {
        const buttons = (x && x.buttons || []).map((b) => (b && b.text ? `[${b.text}]` : '')).filter(Boolean);
        list.append(el('li', {}, [x && x.title, x && x.subtitle, ...buttons].filter(Boolean).join(' ')));
      }
      body.append(el('div', {}, `Rich message (${e.template_id || ''})`), list);
      break;
    }
    case 'custom':
      body.textContent = `Custom event: ${JSON.stringify(e.content)}`;
      break;
    default:
      body.textContent = `${e.type} event`;
  }
  if (e.properties && Object.keys(e.properties).length) body.append(propsNode(e.properties));
  return el('li', { class: cls, 'data-event-id': e.id }, head, body);
}

// fieldAnswer is a filled form field's answer as text, null for a field
// without one.
function fieldAnswer(f) {
  for (const a of [f.answer, f.answers, f.value]) {
    if (a !== undefined && a !== null) return answerText(a);
  }
  if (Array.isArray(f.options)) return f.options.filter((o) => o && o.checked).map((o) => o.label).join(', ');
  return null;
}

function answerText(a) {
  if (a === undefined || a === null) return '';
  if (typeof a === 'string') return a;
  if (Array.isArray(a)) return a.map(answerText).join(', ');
  if (typeof a === 'object') return a.label || a.value || JSON.stringify(a);
  return String(a);
}

function propsNode(props) {
  const dl = el('dl', { class: 'props' });
  for (const [ns, kv] of Object.entries(props || {})) {
    for (const [k, v] of Object.entries(kv || {})) {
      dl.append(el('dt', {}, `${ns}.${k}`), el('dd', {}, typeof v === 'string' ? v : JSON.stringify(v)));
    }
  }
  return dl;
}

function renderChat(c) {
  $('empty').hidden = true;
  $('chat-view').hidden = false;
  const cust = customerOf(c);
  $('chat-title').textContent = cust.name || 'Visitor';
  $('chat-source').textContent = sourceText(c);
  const others = c.active && !c.queued && !isMine(c);
  $('chat-state').textContent = !c.active ? 'Closed' : c.queued ? 'Queued' : `Served by ${servingAgents(c)}`;
  $('watching').hidden = !others;
  const ol = $('messages');
  const atBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 40;
  const key = `${c.id} ${c.threadId}`;
  if (ol.dataset.thread !== key) {
    clear(ol);
    ol.dataset.thread = key;
  }
  const have = new Set([...ol.children].map((n) => n.dataset.eventId));
  const want = [...c.events.values()];
  if (want.length < have.size || want.some((e, i) => ol.children[i] && ol.children[i].dataset.eventId !== e.id && have.has(e.id))) {
    clear(ol);
    have.clear();
  }
  for (const e of want) if (!have.has(e.id)) ol.append(eventNode(c, e));
  if (atBottom || want.length !== have.size) ol.scrollTop = ol.scrollHeight;
  $('typing').textContent = c.typing ? `${cust.name || 'The visitor'} is typing${c.peek ? `: ${c.peek}` : '…'}` : '';
  // Another agent's chat is read-only here; Take over makes it mine.
  $('take-button').hidden = !(c.active && (c.queued || others));
  $('take-button').textContent = others ? 'Take over' : 'Take chat';
  $('transfer-button').hidden = !c.active || others;
  $('close-button').hidden = !c.active || others;
  $('ban-button').hidden = others;
  $('tag-button').hidden = (!c.active && !c.archived) || others;
  $('composer').hidden = !c.active || c.queued || others;
  $('tag-button').textContent = c.tags.length ? `Tag (${c.tags.join(', ')})` : 'Tag';
}

async function loadVisitor(c) {
  const cust = customerOf(c);
  const dl = $('visitor-details');
  clear(dl);
  const row = (k, v) => { if (v) dl.append(el('dt', {}, k), el('dd', {}, v)); };
  row('Name', cust.name);
  row('E-mail', cust.email);
  row('Came from', sourceText(c));
  row('Customer since', when(cust.created_at));
  row('Tags', c.tags.join(', '));
  for (const f of cust.session_fields || []) for (const [k, v] of Object.entries(f)) row(k, v);
  const pages = $('visitor-pages');
  clear(pages);
  for (const e of c.events.values()) {
    if (e.type === 'system_message' && e.system_message_type === 'page_visited') pages.append(el('li', {}, e.text));
  }
  if (!pages.children.length) pages.append(el('li', { class: 'muted' }, 'None recorded'));
  const hist = $('visitor-history');
  clear(hist);
  try {
    const r = await rtm.call('list_threads', { chat_id: c.id, limit: 10 });
    for (const t of r.threads || []) {
      if (t.id === c.threadId) continue;
      const first = (t.events || []).find((e) => e.type === 'message');
      hist.append(el('li', {}, `${when(t.created_at)}: ${first ? first.text.slice(0, 60) : '(no messages)'}`));
    }
  } catch { /* none visible */ }
  if (!hist.children.length) hist.append(el('li', { class: 'muted' }, 'None'));
  try {
    const cu = await rtm.call('get_customer', { id: cust.id });
    row('Chats', String((cu.statistics && cu.statistics.threads_count) || ''));
  } catch { /* not visible */ }
}

// ---- composing -----------------------------------------------------------------

const text = $('composer-text');
text.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('composer').requestSubmit();
  }
});
text.addEventListener('input', () => {
  const c = chats.get(selected);
  if (!c || !c.active || $('note-toggle').checked) return;
  if (!typingSent) {
    typingSent = true;
    rtm.call('send_typing_indicator', { chat_id: c.id, visibility: 'all', is_typing: true }).catch(() => {});
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(stopTyping, 3000);
});

function stopTyping() {
  clearTimeout(typingTimer);
  const c = chats.get(selected);
  if (typingSent && c && c.active) rtm.call('send_typing_indicator', { chat_id: c.id, visibility: 'all', is_typing: false }).catch(() => {});
  typingSent = false;
}

$('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const c = chats.get(selected);
  const body = text.value;
  if (!c || !body.trim()) return;
  const note = $('note-toggle').checked;
  stopTyping();
  try {
    const r = await rtm.call('send_event', { chat_id: c.id, event: { type: 'message', text: body, visibility: note ? 'agents' : 'all' } });
    text.value = '';
    if (r && r.event_id && !c.events.has(r.event_id)) {
      // The incoming_event push follows; nothing to add here.
    }
  } catch (err) {
    alertError(err);
  }
});

$('file-input').addEventListener('change', async (e) => {
  const c = chats.get(selected);
  const f = e.target.files[0];
  e.target.value = '';
  if (!c || !f) return;
  try {
    const url = await uploadFile(token, f);
    await rtm.call('send_event', { chat_id: c.id, event: { type: 'file', url, visibility: $('note-toggle').checked ? 'agents' : 'all' } });
  } catch (err) {
    alertError(err);
  }
});

function alertError(err) {
  $('typing').textContent = `Error: ${err.message}`;
}

// ---- actions ---------------------------------------------------------------------

function confirmDialog(title, message, ok, extra) {
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = message;
  $('confirm-ok').textContent = ok;
  const box = $('confirm-extra');
  clear(box);
  if (extra) box.append(extra);
  const d = $('confirm-dialog');
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
  });
}

$('take-button').addEventListener('click', async () => {
  const c = chats.get(selected);
  if (!c.queued) {
    const ok = await confirmDialog('Take over this chat?', `${servingAgents(c)} will no longer serve the chat with ${customerOf(c).name || 'the visitor'}.`, 'Take over');
    if (!ok) return;
  }
  try {
    await rtm.call('transfer_chat', { id: c.id, target: { type: 'agent', ids: [me.id] } });
    await loadChat(c.id, c.threadId, false);
    render();
  } catch (err) {
    alertError(err);
  }
});

$('transfer-button').addEventListener('click', async () => {
  const c = chats.get(selected);
  const sel = $('transfer-target');
  clear(sel);
  try {
    const agents = await rtm.call('list_agents_for_transfer', { chat_id: c.id });
    for (const a of agents || []) {
      if (a.agent_id === me.id) continue;
      sel.append(el('option', { value: `agent:${a.agent_id}` }, `Agent ${a.agent_id} (${a.active_chats} active chats)`));
    }
  } catch { /* departments only */ }
  for (const d of departments) sel.append(el('option', { value: `group:${d.group}` }, `Department ${d.name}`));
  const dlg = $('transfer-dialog');
  dlg.returnValue = '';
  dlg.showModal();
  dlg.addEventListener('close', async () => {
    if (dlg.returnValue !== 'ok' || !sel.value) return;
    const [type, id] = [sel.value.slice(0, sel.value.indexOf(':')), sel.value.slice(sel.value.indexOf(':') + 1)];
    try {
      await rtm.call('transfer_chat', { id: c.id, target: { type, ids: [type === 'group' ? Number(id) : id] } });
      await loadChat(c.id, c.threadId, false);
      render();
    } catch (err) {
      alertError(err);
    }
  }, { once: true });
});

$('close-button').addEventListener('click', async () => {
  const c = chats.get(selected);
  const ok = await confirmDialog('Close this chat?', `The chat with ${customerOf(c).name || 'the visitor'} ends for the visitor too. This cannot be undone.`, 'Close chat');
  if (!ok) return;
  try {
    await rtm.call('deactivate_chat', { id: c.id });
  } catch (err) {
    alertError(err);
  }
});

$('tag-button').addEventListener('click', () => {
  const dlg = $('tag-dialog');
  $('tag-input').value = '';
  dlg.returnValue = '';
  dlg.showModal();
  dlg.addEventListener('close', async () => {
    const tag = $('tag-input').value.trim();
    const c = chats.get(selected);
    if (dlg.returnValue !== 'ok' || !tag || !c) return;
    try {
      await rtm.call('tag_thread', { chat_id: c.id, thread_id: c.threadId, tag });
    } catch (err) {
      alertError(err);
    }
  }, { once: true });
});

$('ban-button').addEventListener('click', async () => {
  const c = chats.get(selected);
  const days = el('input', { id: 'ban-days', type: 'number', min: '1', max: '36500', value: '1' });
  const extra = el('div', {}, el('label', { for: 'ban-days' }, 'Days'), days);
  const ok = await confirmDialog('Ban this visitor?', `${customerOf(c).name || 'The visitor'} will not be able to start chats until the ban ends.`, 'Ban visitor', extra);
  if (!ok) return;
  try {
    await rtm.call('ban_customer', { id: customerOf(c).id, ban: { days: Number(days.value) || 1 } });
    $('typing').textContent = 'Visitor banned.';
  } catch (err) {
    alertError(err);
  }
});

// ---- boot ----------------------------------------------------------------------

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else showLogin('');
