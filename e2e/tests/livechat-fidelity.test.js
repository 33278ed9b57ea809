'use strict';
// Issue 11 with the vendors' own clients, both over TLS: a customer on
// @livechat/customer-sdk 4.0.2 and an agent on @livechat/lc-sdk-js 4.0.2.
//   - the customer reads the configured pre-chat form (get_form) and sends
//     a filled_form, which the agent receives as sent;
//   - an agent's message with the seed's recipients:"agents" never reaches
//     the customer: not in any frame on its socket, not in getChat, not in
//     the Customer Web API;
//   - after transfer_chat the customer SDK emits chat_transferred.
// Log: e2e/artifacts/livechat-fidelity-chatgate.log.

const test = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const WS = require('ws');

const { Agent } = require('@livechat/lc-sdk-js');
const { startGateway, trustCertificate } = require('../lib/gateway');

const ORG = '3d5a7f0e-0c1b-4f2a-9b8e-chatgate0001'; // configs/chatgate.example.yaml
const { WAIT } = require('../lib/steps');
const SECRET = 'AGENTS-ONLY-E2E-NOTE';

const EXTRA = [
  'departments:',
  '  - {id: "2", name: Billing}',
  'livechat:',
  '  forms:',
  '    - type: prechat',
  '      fields:',
  '        - {id: "1", type: name, label: Your name, required: true}',
  '        - id: "2"',
  '          type: select',
  '          label: Topic',
  '          options: [{id: "0", label: Invoices}, {id: "1", label: Refunds}]',
].join('\n');

function within(ms, p, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

function waitFor(emitter, name, pred = () => true) {
  return within(WAIT, new Promise((resolve) => {
    const h = (p) => {
      if (!pred(p)) return;
      emitter.off(name, h);
      resolve(p);
    };
    emitter.on(name, h);
  }), `${name}`);
}

// pushWaiter collects an lc-sdk-js RTM push and waits for one matching pred.
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

test('customer-sdk and lc-sdk-js over TLS: filled_form, recipients agents, chat_transferred', async (t) => {
  const gw = await startGateway('livechat-fidelity', { tls: true, extraYAML: EXTRA });
  t.after(() => gw.stop());
  trustCertificate(gw.tls.pem);

  const request = (method, path, { headers = {}, body } = {}) => new Promise((resolve, reject) => {
    const req = https.request(gw.url + path, { method, headers, ca: gw.tls.pem }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });

  // Every frame the customer's socket receives, to prove what never came.
  const customerFrames = [];
  const wssBase = gw.url.replace(/^https/, 'wss');
  const saved = { WebSocket: globalThis.WebSocket, Image: globalThis.Image };
  globalThis.WebSocket = class extends WS {
    constructor(url, ...a) {
      const u = new URL(url);
      super(wssBase + u.pathname + u.search, ...a);
      this.on('message', (m) => customerFrames.push(m.toString()));
    }
  };
  globalThis.Image = class { set src(_) {} };
  t.after(() => Object.assign(globalThis, saved));

  const tr = await request('POST', '/v2/customer/token', { headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ response_type: 'token', grant_type: 'cookie', client_id: 'e2e', organization_id: ORG }) });
  assert.equal(tr.status, 200, tr.body);
  const tok = JSON.parse(tr.body);
  const token = { accessToken: tok.access_token, entityId: tok.entity_id, expiresIn: tok.expires_in * 1000,
    tokenType: 'Bearer', creationDate: Date.now(), organizationId: ORG };

  const rtm = new Agent.RTM({ apiUrl: gw.addr });
  const incomingChat = pushWaiter(rtm, 'incoming_chat');
  const incomingEvent = pushWaiter(rtm, 'incoming_event');
  t.after(() => {
    clearInterval(rtm.heartbeatInterval);
    if (rtm.socket) rtm.socket.close();
  });
  await within(WAIT, rtm.connect(), 'agent connect');
  await within(WAIT, rtm.login('Bearer ' + gw.agent.token), 'agent login');

  const CustomerSDK = require('@livechat/customer-sdk');
  const sdk = CustomerSDK.init({
    organizationId: ORG, clientId: 'e2e',
    identityProvider: () => ({ getToken: async () => token, getFreshToken: async () => token,
      hasToken: async () => true, invalidate: async () => {} }),
  });
  t.after(() => sdk.destroy());
  await waitFor(sdk, 'connected');

  let chatId;
  let threadId;
  await t.test('get_form, then a filled_form the agent receives', async () => {
    const f = await within(WAIT, sdk.getForm({ groupId: 0, type: 'prechat' }), 'getForm');
    assert.equal(f.enabled, true);
    assert.equal(f.form.id, 'prechat_0');
    assert.deepEqual(f.form.fields.map((x) => x.type), ['name', 'select']);

    const { chat } = await within(WAIT, sdk.startChat({ chat: { thread: { events: [{ type: 'message', text: 'hello' }] } } }), 'startChat');
    chatId = chat.id;
    threadId = chat.thread.id;
    await incomingChat((p) => p.chat.id === chatId);

    const sent = await within(WAIT, sdk.sendEvent({ chatId, event: { type: 'filled_form', formId: f.form.id, fields: [
      { id: '1', type: 'name', label: 'Your name', answer: 'Ann Customer' },
      { id: '2', type: 'select', label: 'Topic', answer: { id: '1', label: 'Refunds' } },
    ] } }), 'sendEvent filled_form');
    assert.equal(sent.type, 'filled_form');
    const p = await incomingEvent((e) => e.chat_id === chatId && e.event.type === 'filled_form');
    assert.equal(p.event.id, sent.id);
    assert.equal(p.event.form_id, 'prechat_0');
    assert.equal(p.event.form_type, 'prechat');
    assert.equal(p.event.author_id, tok.entity_id);
    assert.deepEqual(p.event.fields.map((x) => [x.label, x.answer]),
      [['Your name', 'Ann Customer'], ['Topic', { id: '1', label: 'Refunds' }]]);
  });

  await t.test('recipients "agents" never reaches the customer', async () => {
    const note = await within(WAIT, rtm.sendEvent(chatId, { type: 'message', text: SECRET, recipients: 'agents' }), 'note');
    const reply = waitFor(sdk, 'incoming_event', (p) => p.event && p.event.text === 'for all');
    await within(WAIT, rtm.sendEvent(chatId, { type: 'message', text: 'for all' }), 'reply');
    await reply; // the note was sent first: had it been pushed, it came before
    const p = await incomingEvent((e) => e.event.id === note.event_id);
    assert.equal(p.event.visibility, 'agents');
    // A recipients value chatgate cannot honour is refused, not widened.
    await assert.rejects(rtm.sendEvent(chatId, { type: 'message', text: SECRET, recipients: 'supervisors' }),
      (e) => e.error && e.error.type === 'validation');

    const chat = await within(WAIT, sdk.getChat({ chatId, threadId }), 'getChat');
    assert.ok(chat.thread.events.some((e) => e.text === 'for all'));
    assert.ok(!JSON.stringify(chat).includes(SECRET), 'getChat shows the note');
    for (const action of ['get_chat', 'list_threads', 'list_chats']) {
      const r = await request('POST', `/v3.5/customer/action/${action}?organization_id=${ORG}`, {
        headers: { Authorization: 'Bearer ' + tok.access_token, 'Content-Type': 'application/json' },
        body: JSON.stringify(action === 'list_chats' ? {} : { chat_id: chatId }) });
      assert.equal(r.status, 200, r.body);
      assert.ok(!r.body.includes(SECRET), `Web API ${action} shows the note`);
    }
    assert.ok(!customerFrames.some((f) => f.includes(SECRET)), 'a frame to the customer carried the note');
  });

  await t.test('transfer_chat: the customer SDK emits chat_transferred', async () => {
    const transferred = waitFor(sdk, 'chat_transferred', (p) => p.chatId === chatId);
    await within(WAIT, rtm.transferChat(chatId, { target: { type: 'group', ids: [2] } }), 'transfer_chat');
    const p = await transferred;
    assert.equal(p.threadId, threadId);
    assert.deepEqual(p.transferredTo.groupIds, [2]);
    assert.deepEqual(p.transferredTo.agentIds, [gw.agent.id]);
    assert.equal(p.reason, 'manual');
    assert.equal(p.requesterId, gw.agent.id);
  });
});

// Issue 11, item 5, in the agent console: a Rocket.Chat offline message
// left while no agent was connected is among the archives of the agent
// who logs in afterwards, with its ticket form and message.
test('console: an offline message left with no agent connected is in the archives', async (t) => {
  const { openBrowser, consolePage, WAIT } = require('../lib/console');
  const { WireLog } = require('../lib/artifacts');
  const gw = await startGateway('livechat-offline-console');
  t.after(() => gw.stop());
  const r = await fetch(gw.url + '/api/v1/livechat/offline.message', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'Olga Offline', email: 'olga@example.invalid', message: 'Please call me back about my invoice' }),
  });
  assert.equal(r.status, 200, await r.text());

  const wire = new WireLog('livechat-offline-console');
  const b = await openBrowser('livechat-offline-console', wire);
  t.after(async () => { await b.close(); wire.save(); });
  const c = consolePage(b.page);
  try {
    await c.loginPassword(gw.url, gw.agent.username, gw.agent.password);
    await c.chat('Olga Offline').waitFor({ timeout: WAIT });
    await c.open('Olga Offline');
    const log = c.messages();
    await log.getByText('Please call me back about my invoice', { exact: true }).first().waitFor({ timeout: WAIT });
    await log.getByText('Form: ticket').waitFor({ timeout: WAIT });
    await log.getByText('olga@example.invalid').waitFor({ timeout: WAIT });
    await b.shot('offline-message');
  } catch (e) {
    await b.shot('FAILED').catch(() => {});
    throw e;
  }
});
