'use strict';
// @livechat/lc-sdk-js 4.0.2 as an agent against chatgate over TLS: the SDK
// speaks only wss:// and https:// (§4.2), so this file starts chatgate with
// a throwaway certificate for 127.0.0.1 (lib/gateway.js, {tls: true}) and
// trusts it in this process with trustCertificate (verification stays on).
// A visitor on the LiveChat v2 REST API starts the conversation.
// Log: e2e/artifacts/livechat-agent-chatgate.log.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');

const { Agent } = require('@livechat/lc-sdk-js');

const { startGateway, trustCertificate } = require('../lib/gateway');

const { WAIT } = require('../lib/steps');

let gw;
let apiUrl; // host:port, as lc-sdk-js takes it
before(async () => {
  gw = await startGateway('livechat-agent', { tls: true });
  trustCertificate(gw.tls.pem);
  apiUrl = gw.addr;
});
after(async () => { if (gw) await gw.stop(); });

function within(ms, p, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

// request makes one HTTPS request trusting only the test certificate.
function request(method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(gw.url + path, { method, headers, ca: gw.tls.pem }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// startVisitorChat starts a conversation as a LiveChat v2 visitor.
async function startVisitorChat(visitorId, name, welcome) {
  const form = new URLSearchParams({ licence_id: '100000', welcome_message: welcome, name });
  const r = await request('POST', `/visitors/${visitorId}/chat/start`, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-API-Version': '2' },
    body: form.toString(),
  });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
}

// waitPush resolves with the first push of that action matching pred.
function pushWaiter(rtm, action) {
  const seen = [];
  const waiters = [];
  rtm.on(action, (p) => {
    seen.push(p);
    for (const w of waiters.splice(0)) w();
  });
  return (pred = () => true) => within(WAIT, new Promise((resolve) => {
    const check = () => {
      const hit = seen.find(pred);
      if (hit) resolve(hit); else waiters.push(check);
    };
    check();
  }), `push ${action}`);
}

function closeRTM(rtm) {
  clearInterval(rtm.heartbeatInterval);
  if (rtm.socket) rtm.socket.close();
}

test('lc-sdk-js agent over RTM (wss) and the Web API (https)', async (t) => {
  const rtm = new Agent.RTM({ apiUrl });
  const incomingChat = pushWaiter(rtm, 'incoming_chat');
  const incomingEvent = pushWaiter(rtm, 'incoming_event');
  const deactivated = pushWaiter(rtm, 'chat_deactivated');
  let chatId;
  try {
    await t.test('connect over wss and log in', async () => {
      await within(WAIT, rtm.connect(), 'connect');
      const login = await within(WAIT, rtm.login('Bearer ' + gw.agent.token), 'login');
      assert.equal(login.my_profile.id, gw.agent.id);
      assert.equal(login.my_profile.routing_status, 'accepting_chats');
    });

    await t.test('a v2 visitor chat arrives as incoming_chat', async () => {
      const start = await startVisitorChat('e2e-visitor-1', 'Visitor One', 'Welcome!');
      assert.ok(start.secured_session_id);
      const push = await incomingChat((p) => p.chat.users.some((u) => u.type === 'customer' && u.name === 'Visitor One'));
      chatId = push.chat.id;
      assert.ok(chatId);
      assert.equal(push.chat.thread.active, true);
    });

    await t.test('send_event over RTM', async () => {
      const r = await within(WAIT, rtm.sendEvent(chatId, { type: 'message', text: 'Hello from lc-sdk-js' }), 'send_event');
      assert.match(r.event_id, /_\d+$/);
      const p = await incomingEvent((e) => e.event.id === r.event_id);
      assert.equal(p.event.text, 'Hello from lc-sdk-js');
      assert.equal(p.event.author_id, gw.agent.id);
    });

    await t.test('list_chats and get_chat over RTM', async () => {
      const list = await within(WAIT, rtm.listChats(), 'list_chats');
      const s = list.chats_summary.find((c) => c.id === chatId);
      assert.ok(s, 'chat listed');
      assert.equal(s.last_thread_summary.active, true);
      const chat = await within(WAIT, rtm.getChat(chatId), 'get_chat');
      assert.equal(chat.id, chatId);
      assert.ok(chat.thread.events.some((e) => e.text === 'Hello from lc-sdk-js'));
    });

    await t.test('an RTM error rejects with {error}', async () => {
      await assert.rejects(rtm.getChat('no-such-chat'), (e) => e.error && e.error.type === 'not_found');
    });

    const web = new Agent.Web('e2e-client', () => ({ accessToken: gw.agent.token, region: 'dal' }), { apiUrl });

    await t.test('Web API over https: list_chats, send_event', async () => {
      const list = await within(WAIT, web.listChats(), 'web list_chats');
      assert.ok(list.chats_summary.some((c) => c.id === chatId));
      const r = await within(WAIT, web.sendEvent(chatId, { type: 'message', text: 'Hello from the Web API' }), 'web send_event');
      assert.match(r.event_id, /_\d+$/);
      // The RTM session gets the push (without request_id).
      const p = await incomingEvent((e) => e.event.id === r.event_id);
      assert.equal(p.event.text, 'Hello from the Web API');
    });

    await t.test('Web API errors: body {error:{type,message}}', async () => {
      await assert.rejects(web.getChat('no-such-chat'), (e) => e.type === 'not_found' && typeof e.message === 'string');
      const bad = new Agent.Web('e2e-client', () => ({ accessToken: 'wrong-token', region: 'dal' }), { apiUrl });
      await assert.rejects(bad.listChats(), (e) => e.type === 'authentication');
      const r = await request('POST', '/v3.5/agent/action/login', {
        headers: { Authorization: 'Bearer ' + gw.agent.token, 'Content-Type': 'application/json' }, body: '{}' });
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).error.type, 'validation');
    });

    await t.test('upload_file and a file event', async () => {
      const boundary = 'e2eboundary1234';
      const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="hello file.txt"\r\n` +
        `Content-Type: text/plain\r\n\r\nhello world\r\n--${boundary}--\r\n`;
      const r = await request('POST', '/v3.5/agent/action/upload_file', {
        headers: { Authorization: 'Bearer ' + gw.agent.token, 'Content-Type': `multipart/form-data; boundary=${boundary}` },
        body });
      assert.equal(r.status, 200, r.body);
      const { url } = JSON.parse(r.body);
      assert.ok(url.startsWith(gw.url + '/file-upload/'), url);
      const ev = await within(WAIT, web.sendEvent(chatId, { type: 'file', url }), 'send_event file');
      const p = await incomingEvent((e) => e.event.id === ev.event_id);
      assert.equal(p.event.type, 'file');
      assert.equal(p.event.name, 'hello file.txt');
      const f = await request('GET', new URL(url).pathname);
      assert.equal(f.status, 200);
      assert.equal(f.body, 'hello world');
    });

    await t.test('deactivate_chat over RTM', async () => {
      await within(WAIT, rtm.deactivateChat(chatId), 'deactivate_chat');
      const p = await deactivated((d) => d.chat_id === chatId);
      assert.equal(p.user_id, gw.agent.id);
      await assert.rejects(rtm.sendEvent(chatId, { type: 'message', text: 'too late' }),
        (e) => e.error && e.error.type === 'chat_inactive');
    });
  } finally {
    closeRTM(rtm);
  }
});
