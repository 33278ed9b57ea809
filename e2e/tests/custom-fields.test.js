'use strict';
// Rocket.Chat livechat custom fields seen by a LiveChat agent: a visitor
// written with @rocket.chat/sdk 1.0.0-alpha.42 (REST) sets a visitor-scope
// and a room-scope custom field, and an agent on @livechat/lc-sdk-js 4.0.2
// (RTM over wss, so chatgate serves TLS: lib/gateway.js {tls: true}) sees
// them as documented in docs/rocketchat.md "Custom fields": visitor-scope
// values as the customer's session_fields, room-scope values as thread
// properties of namespace rocketchat_custom_fields.
// Log: e2e/artifacts/custom-fields-chatgate.log.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { Agent } = require('@livechat/lc-sdk-js');
const LivechatClient = require('@rocket.chat/sdk/lib/clients/Livechat').default;

const { startGateway, trustCertificate } = require('../lib/gateway');
const { stepper, eventually, WAIT } = require('../lib/steps');

const silent = { debug() {}, info() {}, warning() {}, warn() {}, error() {} };

let gw;
before(async () => {
  gw = await startGateway('custom-fields', {
    tls: true,
    rocketchat: [
      'custom_fields:',
      '  - {id: customerId, label: Customer ID, regexp: "^[A-Z]-[0-9]+$", public: true}',
      '  - {id: orderRef, label: Order, scope: room}',
    ],
  });
  trustCertificate(gw.tls.pem);
});
after(async () => { if (gw) await gw.stop(); });

function within(ms, p, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

test('custom fields: a Rocket.Chat visitor sets them, a LiveChat agent sees them', async (t) => {
  const step = stepper(t);
  const rtm = new Agent.RTM({ apiUrl: gw.addr });
  const incoming = [];
  rtm.on('incoming_chat', (p) => incoming.push(p));
  const token = crypto.randomBytes(32).toString('hex');
  const visitor = new LivechatClient({ host: gw.url, protocol: 'ddp', useSsl: true, logger: silent });
  visitor.credentials.token = token;
  let me;
  let room;
  let chatId;
  try {
    await step('the agent logs in over wss', async () => {
      await within(WAIT, rtm.connect(), 'connect');
      await within(WAIT, rtm.login('Bearer ' + gw.agent.token), 'login');
    });
    await step('livechat/config lists the public field for the registration form', async () => {
      const cfg = await within(WAIT, visitor.config({ token }), 'GET livechat/config');
      assert.deepEqual((cfg.customFields || []).map((f) => f._id), ['customerId']);
    });
    await step('the visitor registers and opens a room; the agent gets the chat', async () => {
      me = await within(WAIT, visitor.grantVisitor({ visitor: { token, name: 'Field Visitor' } }), 'POST livechat/visitor');
      room = await within(WAIT, visitor.room(), 'GET livechat/room');
      assert.ok(room && room._id);
      const p = await eventually(() => incoming.find((c) => c.chat.users.some((u) => u.type === 'customer' && u.name === 'Field Visitor')),
        WAIT, 'incoming_chat');
      chatId = p.chat.id;
    });
    await step('custom.fields sets a visitor-scope and a room-scope field', async () => {
      const r = await within(WAIT, visitor.sendCustomFields({ token, customFields: [
        { key: 'customerId', value: 'A-123', overwrite: true },
        { key: 'orderRef', value: 'ORD-9', overwrite: true },
      ] }), 'POST livechat/custom.fields');
      assert.equal(r.success, true);
      assert.deepEqual(r.fields.map((f) => [f.Key, f.value]), [['customerId', 'A-123'], ['orderRef', 'ORD-9']]);
    });
    await step('an undefined key or a value off the regexp is refused', async () => {
      await assert.rejects(visitor.sendCustomField({ token, key: 'nope', value: 'x', overwrite: true }));
      await assert.rejects(visitor.sendCustomField({ token, key: 'customerId', value: 'lowercase', overwrite: true }));
    });
    await step('the LiveChat agent sees session_fields and thread properties (get_chat)', async () => {
      const chat = await eventually(async () => {
        const c = await rtm.getChat(chatId);
        const cust = c.users.find((u) => u.type === 'customer');
        const props = (c.thread.properties || {}).rocketchat_custom_fields || {};
        return cust && (cust.session_fields || []).some((f) => f.customerId === 'A-123') && props.orderRef === 'ORD-9' ? c : null;
      }, WAIT, 'custom fields in get_chat');
      const cust = chat.users.find((u) => u.type === 'customer');
      assert.equal(cust.id, me._id);
      assert.deepEqual(cust.session_fields, [{ customerId: 'A-123' }]);
      assert.equal(chat.thread.properties.rocketchat_custom_fields.orderRef, 'ORD-9');
    });
    await step('and in list_chats', async () => {
      const list = await within(WAIT, rtm.listChats(), 'list_chats');
      const s = list.chats_summary.find((c) => c.id === chatId);
      assert.ok(s, 'chat listed');
      const cust = s.users.find((u) => u.type === 'customer');
      assert.deepEqual(cust.session_fields, [{ customerId: 'A-123' }]);
    });
  } finally {
    clearInterval(rtm.heartbeatInterval);
    if (rtm.socket) rtm.socket.close();
  }
});
