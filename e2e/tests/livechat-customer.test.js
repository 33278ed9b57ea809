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
const { startGateway } = require('../lib/gateway');
const { Agent } = require('../lib/agent');
const { waitFor, connectCustomer } = require('../lib/customer');

test('customer-sdk 4.0.2: login, startChat, sendEvent, agent reply, listChats, deactivateChat', async (t) => {
  const gw = await startGateway('livechat-customer');
  t.after(() => gw.stop());
  const agent = await Agent.connect(gw.url, gw.agent.token);
  t.after(() => agent.close());

  const { sdk, tok, res, connected } = await connectCustomer(t, gw);
  assert.equal(tok.token_type, 'Bearer');
  assert.match(res.headers.get('set-cookie') || '', /__lc_cid=/);
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
