'use strict';
// A visitor written with @rocket.chat/sdk 1.0.0-alpha.42 (REST + DDP; the
// client bundled in the widget) against chatgate, and a test agent over
// the LiveChat agent RTM websocket. Wire log: e2e/artifacts/sdk-visitor-wire.txt
// (agent side) and sdk-visitor-chatgate.log.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const LivechatClient = require('@rocket.chat/sdk/lib/clients/Livechat').default;

const { startGateway } = require('../lib/gateway');
const { Agent } = require('../lib/agent');
const { WireLog } = require('../lib/artifacts');
const { stepper, eventually, WAIT } = require('../lib/steps');


let gw;
before(async () => { gw = await startGateway('sdk-visitor'); });
after(async () => {
  if (gw) await gw.stop();
  // The SDK's DDP driver keeps reconnect and ping timers (it has no way to
  // stop them all); let the runner see this file end.
  setTimeout(() => process.exit(), 1000).unref();
});

// Rejects when p does not settle in ms (SDK promises can hang forever).
function within(ms, p, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

const silent = { debug() {}, info() {}, warning() {}, warn() {}, error() {} };

test('sdk: a @rocket.chat/sdk visitor chats with an RTM agent', async (t) => {
  const wire = new WireLog('sdk-visitor');
  const step = stepper(t, (name, e) => wire.add('FAILED', `${name}: ${e.message}`));
  const agent = await Agent.connect(gw.url, gw.agent.token, wire);
  const token = crypto.randomBytes(32).toString('hex'); // as the widget makes it
  const client = new LivechatClient({ host: gw.url, protocol: 'ddp', useSsl: false, logger: silent });
  client.credentials.token = token;
  const received = []; // messages from stream-room-messages
  const typing = []; // [username, isTyping] from stream-notify-room
  let visitor;
  let room;
  let chatId;
  const msg = 'Hello from the SDK visitor';
  const reply = 'Hello SDK visitor, agent here';
  try {
    await step('config: online, with settings, theme, messages and departments', async () => {
      const cfg = await within(WAIT, client.config({ token }), 'GET livechat/config');
      wire.add('SDK', 'config ' + JSON.stringify(cfg).slice(0, 600));
      assert.equal(typeof cfg, 'object');
      assert.equal(cfg.online, true, 'online');
      for (const k of ['settings', 'theme', 'messages']) assert.equal(typeof cfg[k], 'object', k);
      assert.ok(Array.isArray(cfg.departments), 'departments is an array');
      assert.equal(cfg.room, undefined, 'no room for a new token');
    });
    await step('connect: DDP connect + livechat:setUpConnection', async () => {
      await within(WAIT, client.connect(), 'DDP connect/setUpConnection');
    });
    await step('grantVisitor registers the visitor and keeps the token', async () => {
      visitor = await within(WAIT, client.grantVisitor({ visitor: { token, name: 'Sdk Visitor', email: 'sdk@example.invalid' } }), 'POST livechat/visitor');
      wire.add('SDK', 'visitor ' + JSON.stringify(visitor));
      assert.equal(visitor.token, token);
      assert.ok(visitor._id, 'visitor._id');
      assert.ok(visitor.username, 'visitor.username');
      assert.equal(client.credentials.token, token);
      const again = await within(WAIT, client.visitor(), 'GET livechat/visitor/:token');
      assert.equal(again.visitor._id, visitor._id);
    });
    await step('room: a new open livechat room', async () => {
      room = await within(WAIT, client.room(), 'GET livechat/room');
      wire.add('SDK', 'room ' + JSON.stringify(room));
      assert.ok(room && room._id, 'room._id');
      assert.equal(room.t, 'l');
      assert.equal(room.open, true);
      const same = await within(WAIT, client.room(), 'GET livechat/room again');
      assert.equal(same._id, room._id, 'the open room is reused');
    });
    await step('subscribe to the room (stream-room-messages, typing, deleteMessage)', async () => {
      await client.onMessage((m) => { wire.add('SDK<', 'message ' + JSON.stringify(m)); received.push(m); });
      await client.onTyping((u, on) => { typing.push([u, on]); });
      await within(WAIT, client.subscribeRoom(room._id), 'subscriptions ready');
    });
    await step('send: the message comes back on the stream (echo), with a Date ts', async () => {
      await within(WAIT, client.sendMessage({ msg, rid: room._id }), 'POST livechat/message');
      const echo = await eventually(() => received.find((m) => m.msg === msg), WAIT, 'echo of the visitor message');
      assert.equal(echo.u._id, visitor._id, 'echo author is the visitor');
      assert.equal(echo.rid, room._id);
      assert.ok(echo.ts instanceof Date && !Number.isNaN(echo.ts.getTime()), 'ts decoded from {$date}');
    });
    await step('the agent receives it over RTM', async () => {
      const got = await agent.waitVisitorText(msg);
      chatId = got.chatId;
    });
    await step('agent typing and message arrive on the visitor streams', async () => {
      await agent.typing(chatId, true);
      await eventually(() => typing.find(([, on]) => on === true), WAIT, 'agent typing true');
      await agent.typing(chatId, false);
      await agent.sendMessage(chatId, reply);
      const m = await eventually(() => received.find((x) => x.msg === reply), WAIT, 'agent message on the stream');
      assert.notEqual(m.u._id, visitor._id, 'agent message author');
      assert.ok(m.u.username, 'agent username');
      assert.ok(m.ts instanceof Date && !Number.isNaN(m.ts.getTime()), 'ts');
      const [u] = typing.find(([, on]) => on === true);
      assert.equal(u, m.u.username, 'typing names the agent by username');
    });
    await step('history (loadMessages): newest first, both messages, ISO ts', async () => {
      const hist = await within(WAIT, client.loadMessages(room._id), 'GET livechat/messages.history');
      const msgs = Array.isArray(hist) ? hist : hist.messages;
      wire.add('SDK', 'history ' + JSON.stringify(msgs).slice(0, 800));
      assert.ok(Array.isArray(msgs), 'messages array');
      const texts = msgs.map((m) => m.msg);
      const iMsg = texts.indexOf(msg);
      const iReply = texts.indexOf(reply);
      assert.ok(iMsg >= 0 && iReply >= 0, `both messages in history: ${JSON.stringify(texts)}`);
      assert.ok(iReply < iMsg, 'newest first');
      for (const m of msgs) assert.match(String(m.ts), /^\d{4}-\d\d-\d\dT/, 'REST ts is an ISO string');
    });
    await step('closeChat: the room closes, the agent is told, config has no room', async () => {
      const r = await within(WAIT, client.closeChat({ rid: room._id }), 'POST livechat/room.close');
      wire.add('SDK', 'room.close ' + JSON.stringify(r));
      await eventually(() => received.find((m) => m.t === 'livechat-close'), WAIT, 'livechat-close on the stream');
      await agent.waitPush((p) => p.action === 'chat_deactivated' && p.payload.chat_id === chatId, WAIT, 'chat_deactivated');
      const cfg = await within(WAIT, client.config({ token }), 'GET livechat/config after close');
      assert.equal(cfg.room, undefined, 'closed room not reported');
      assert.ok(cfg.guest && cfg.guest._id === visitor._id, 'guest still known');
    });
  } finally {
    wire.save();
    agent.close();
    // Do not await unsubscribeAll(): it never resolves (spec §4).
    await within(5000, client.disconnect(), 'disconnect').catch(() => {});
  }
});
