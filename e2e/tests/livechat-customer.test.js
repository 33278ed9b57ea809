'use strict';
// @livechat/customer-sdk@4.0.2 against chatgate's Customer Chat API
// (spec §4.1): the SDK has no host option, so a global WebSocket shim
// rewrites its wss://api.livechatinc.com/... URL to the gateway (plain
// ws://127.0.0.1, no TLS needed), a custom identityProvider hands it a
// token from chatgate's POST /v2/customer/token (cookie grant), and an
// Image stub swallows its telemetry pixel. A LiveChat RTM test agent
// answers.

const test = require('node:test');
const assert = require('node:assert/strict');
const WS = require('ws');
const { startGateway } = require('../lib/gateway');
const { Agent } = require('../lib/agent');

const ORG = '3d5a7f0e-0c1b-4f2a-9b8e-chatgate0001'; // configs/chatgate.example.yaml

function waitFor(emitter, name, pred = () => true, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${name} within ${timeoutMs} ms`)), timeoutMs);
    const h = (p) => {
      if (!pred(p)) return;
      clearTimeout(t);
      emitter.off(name, h);
      resolve(p);
    };
    emitter.on(name, h);
  });
}

test('customer-sdk 4.0.2: login, startChat, sendEvent, agent reply, listChats, deactivateChat', async (t) => {
  const gw = await startGateway('livechat-customer');
  t.after(() => gw.stop());
  const wsBase = gw.url.replace(/^http/, 'ws');

  const saved = { WebSocket: globalThis.WebSocket, Image: globalThis.Image };
  globalThis.WebSocket = class extends WS {
    constructor(url, ...a) {
      const u = new URL(url);
      super(wsBase + u.pathname + u.search, ...a);
    }
  };
  globalThis.Image = class { set src(_) {} };
  t.after(() => Object.assign(globalThis, saved));

  // A token from the gateway's accounts-style endpoint.
  const res = await fetch(gw.url + '/v2/customer/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ response_type: 'token', grant_type: 'cookie', client_id: 'e2e', organization_id: ORG }),
  });
  assert.equal(res.status, 200);
  const tok = await res.json();
  assert.equal(tok.token_type, 'Bearer');
  assert.match(res.headers.get('set-cookie') || '', /__lc_cid=/);
  const token = { accessToken: tok.access_token, entityId: tok.entity_id, expiresIn: tok.expires_in * 1000,
    tokenType: 'Bearer', creationDate: Date.now(), organizationId: ORG };

  const agent = await Agent.connect(gw.url, gw.agent.token);
  t.after(() => agent.close());

  const CustomerSDK = require('@livechat/customer-sdk');
  const sdk = CustomerSDK.init({
    organizationId: ORG, clientId: 'e2e',
    identityProvider: () => ({ getToken: async () => token, getFreshToken: async () => token,
      hasToken: async () => true, invalidate: async () => {} }),
  });
  t.after(() => sdk.destroy());

  const connected = await waitFor(sdk, 'connected');
  assert.equal(connected.customer.id, tok.entity_id);
  assert.equal(connected.availability, 'online');

  // Resolved by the incoming_chat push carrying the request's request_id.
  const { chat } = await sdk.startChat({ chat: { thread: { events: [{ type: 'message', text: 'hello from sdk' }] } } });
  assert.equal(chat.id, tok.entity_id);
  const seen = await agent.waitVisitorText('hello from sdk');
  assert.equal(seen.chatId, chat.id);

  const ev = await sdk.sendEvent({ chatId: chat.id, event: { type: 'message', text: 'second' } });
  assert.equal(ev.text, 'second');
  await agent.waitVisitorText('second');

  const reply = waitFor(sdk, 'incoming_event', (p) => p.event && p.event.text === 'hi from the agent');
  await agent.sendMessage(chat.id, 'hi from the agent');
  const got = await reply;
  assert.equal(got.chatId, chat.id);

  const list = await sdk.listChats();
  assert.equal(list.totalChats, 1);
  assert.equal(list.chatsSummary[0].id, chat.id);

  const deactivated = waitFor(sdk, 'chat_deactivated');
  await sdk.deactivateChat({ id: chat.id });
  assert.equal((await deactivated).chatId, chat.id);
  await agent.waitPush((p) => p.action === 'chat_deactivated' && p.payload.chat_id === chat.id);
});
