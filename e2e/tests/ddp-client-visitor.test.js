'use strict';
// A visitor written with @rocket.chat/ddp-client 1.1.2 (LivechatClientImpl,
// the livechat client of Rocket.Chat 6–8's widget: REST under /api/v1,
// DDP streams at /websocket) against chatgate, a test agent over the
// LiveChat agent RTM websocket, the agent's Rocket.Chat REST login for the
// rename, and a loopback SMTP listener for the transcript.
// Wire log: e2e/artifacts/ddp-client-visitor-wire.txt.

// ddp-client takes the global WebSocket; Node 20 has none.
if (typeof globalThis.WebSocket === 'undefined') globalThis.WebSocket = require('ws');

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { LivechatClientImpl } = require('@rocket.chat/ddp-client');

const { startGateway } = require('../lib/gateway');
const { Agent } = require('../lib/agent');
const { WireLog } = require('../lib/artifacts');
const { stepper, eventually, WAIT } = require('../lib/steps');
const { SMTPSink, decodeQP } = require('../lib/smtp');


let gw;
let smtp;
before(async () => {
  smtp = new SMTPSink();
  const { host, port } = await smtp.listen();
  gw = await startGateway('ddp-client-visitor', {
    departments: [{ id: '0', name: 'General' }, { id: 'sales', name: 'Sales' }, { id: 'empty', name: 'Nobody here' }],
    agentDepartments: ['0', 'sales'],
    smtp: { host, port, from: 'Support <support@example.com>' },
    rocketchat: ['queue_wait_per_chat: 2m'],
  });
});
after(async () => {
  if (gw) await gw.stop();
  if (smtp) await smtp.close();
  // The DDP client keeps reconnect and ping timers; let the runner see
  // this file end.
  setTimeout(() => process.exit(), 1000).unref();
});

function within(ms, p, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

test('ddp-client: a @rocket.chat/ddp-client 1.1.2 visitor goes through a whole chat', async (t) => {
  const wire = new WireLog('ddp-client-visitor');
  const step = stepper(t, (name, e) => wire.add('FAILED', `${name}: ${e.message}`));
  const agent = await Agent.connect(gw.url, gw.agent.token, wire);
  const sdk = LivechatClientImpl.create(gw.url);
  const token = crypto.randomBytes(32).toString('hex');
  // The realtime seed: the client picks the new room's _id.
  const rid = crypto.randomBytes(9).toString('base64url').slice(0, 17);
  const messages = [];
  const activity = [];
  const agentData = [];
  const visitorData = [];
  const queueData = [];
  let visitor;
  let chatId;
  let sent;
  const text = 'Hello from ddp-client';
  const edited = 'Hello from ddp-client (edited)';
  const reply = 'Agent here, hello ddp-client';
  const ddpText = 'Hello over the DDP method';
  try {
    await step('connect: DDP at /websocket', async () => {
      await within(WAIT, sdk.connection.connect(), 'DDP connect');
    });
    await step('grantVisitor: POST livechat/visitor keeps the token', async () => {
      const r = await within(WAIT, sdk.grantVisitor({ visitor: { token, name: 'Ddp Visitor', email: 'ddp.visitor@example.com' } }), 'grantVisitor');
      visitor = r.visitor;
      wire.add('DDPC', 'visitor ' + JSON.stringify(visitor));
      assert.equal(visitor.token, token);
      assert.equal(sdk.token, token);
    });
    await step('room: GET livechat/room?rid=<client id> starts the room under that _id', async () => {
      const room = await within(WAIT, sdk.room({ rid }), 'room');
      wire.add('DDPC', 'room ' + JSON.stringify(room));
      assert.equal(room._id, rid, 'the client-chosen room id');
      assert.equal(room.open, true);
      assert.equal(room.source.type, 'api', 'no widget cookie: source api');
      const cfg = await within(WAIT, sdk.config({ token }), 'config');
      assert.equal(cfg.room._id, rid, 'config names the room by the client id');
    });
    await step('subscribe: room messages, user activity, deletions, livechat-room', async () => {
      sdk.onMessage((m) => { wire.add('DDPC<', 'message ' + JSON.stringify(m)); messages.push(m); });
      sdk.onUserActivity((u, acts) => { activity.push([u, acts]); });
      await sdk.subscribeRoom(rid);
      sdk.onAgentChange(rid, (a) => agentData.push(a));
      sdk.onVisitorChange(rid, (v) => { wire.add('DDPC<', 'visitorData ' + JSON.stringify(v)); visitorData.push(v); });
      // Subscribed without a token (as ddp-client 1.1.2 does): refused,
      // as Rocket.Chat's stream-livechat-room read rule refuses it; its
      // callback still gets queueData through the token-bearing
      // subscriptions above (ddp-client matches frames by eventName).
      sdk.onQueuePositionChange(rid, (q) => { wire.add('DDPC<', 'queueData ' + JSON.stringify(q)); queueData.push(q); });
      await eventually(() => [...sdk.client.subscriptions.values()].filter((s) => s.isReady).length >= 5, WAIT, 'subscriptions ready');
    });
    await step('send: POST livechat/message, echoed on the stream under the client room id', async () => {
      const r = await within(WAIT, sdk.sendMessage({ rid, msg: text }), 'sendMessage');
      sent = r.message;
      assert.equal(sent.rid, rid);
      const echo = await eventually(() => messages.find((m) => m.msg === text), WAIT, 'echo');
      assert.equal(echo.rid, rid);
      assert.equal(echo.u._id, visitor._id);
    });
    await step('the agent receives it, replies; the reply reaches the visitor', async () => {
      const got = await agent.waitVisitorText(text);
      chatId = got.chatId;
      await agent.sendMessage(chatId, reply);
      const m = await eventually(() => messages.find((x) => x.msg === reply), WAIT, 'agent reply');
      assert.equal(m.rid, rid);
      assert.equal(m.u.username, gw.agent.username);
    });
    await step('send over DDP: the method sendMessageLivechat answers, its message streams back and reaches the agent', async () => {
      // The legacy send (the Meteor-era livechat client's Meteor.call):
      // the answer and the stream frame of the message leave chatgate in
      // one write (docs/rocketchat.md); the client must still see both.
      const _id = crypto.randomBytes(12).toString('base64url').slice(0, 17);
      const r = await within(WAIT, sdk.client.callAsync('sendMessageLivechat', { _id, rid, msg: ddpText, token }), 'sendMessageLivechat');
      wire.add('DDPC', 'sendMessageLivechat ' + JSON.stringify(r));
      assert.equal(r._id, _id);
      assert.equal(r.rid, rid);
      assert.equal(r.msg, ddpText);
      assert.equal(r.newRoom, false);
      const echo = await eventually(() => messages.find((m) => m._id === _id), WAIT, 'the method message on the stream');
      assert.equal(echo.rid, rid);
      assert.equal(echo.msg, ddpText);
      await agent.waitVisitorText(ddpText);
    });
    await step('typing both ways: agent → user-activity stream, visitor → agent RTM', async () => {
      await agent.typing(chatId, true);
      const [u, acts] = await eventually(() => activity.find(([, a]) => Array.isArray(a) && a.includes('user-typing')), WAIT, 'agent typing');
      assert.equal(u, gw.agent.username);
      assert.ok(acts.includes('user-typing'));
      await agent.typing(chatId, false);
      await within(WAIT, sdk.notifyVisitorActivity(rid, visitor.username, ['user-typing']), 'notifyVisitorActivity');
      await agent.waitPush((p) => p.action === 'incoming_typing_indicator' && p.payload.chat_id === chatId &&
        p.payload.typing_indicator && p.payload.typing_indicator.is_typing === true, WAIT, 'visitor typing on the agent RTM');
    });
    await step('edit: PUT livechat/message/:_id; the agent sees event_updated', async () => {
      const r = await within(WAIT, sdk.editMessage(sent._id, { rid, token, msg: edited }), 'editMessage');
      wire.add('DDPC', 'edit ' + JSON.stringify(r));
      await eventually(() => messages.find((m) => m.msg === edited && m._id === sent._id), WAIT, 'edited message on the stream');
      await agent.waitPush((p) => p.action === 'event_updated' && p.payload.event && p.payload.event.text === edited, WAIT, 'event_updated');
    });
    await step('department transfer: POST livechat/visitor/department.transfer', async () => {
      const r = await within(WAIT, sdk.transferChat({ rid, department: 'sales' }), 'transferChat');
      assert.equal(r.success, true);
      const room = await within(WAIT, sdk.room({ rid }), 'room after transfer');
      assert.equal(room.departmentId, 'sales');
      assert.equal(room._id, rid);
    });
    await step('the agent renames the visitor (Rocket.Chat REST): visitorData arrives', async () => {
      const login = await (await fetch(gw.url + '/api/v1/login', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user: gw.agent.username, password: gw.agent.password }) })).json();
      assert.equal(login.status, 'success');
      const r = await (await fetch(gw.url + '/api/v1/omnichannel/contact', { method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-User-Id': login.data.userId, 'X-Auth-Token': login.data.authToken },
        body: JSON.stringify({ token, name: 'Renamed Visitor' }) })).json();
      assert.equal(r.success, true, JSON.stringify(r));
      const v = await eventually(() => visitorData.find((x) => x.name === 'Renamed Visitor'), WAIT, 'visitorData');
      assert.equal(v._id, visitor._id);
      assert.equal(v.token, token);
    });
    await step('queued: moved to a department nobody serves, the visitor sees queueInfo and queueData', async () => {
      const r = await within(WAIT, sdk.transferChat({ rid, department: 'empty' }), 'transferChat to empty');
      assert.equal(r.success, true);
      await eventually(() => agentData.some((a) => a === undefined), WAIT, 'agentData cleared');
      const cfg = await within(WAIT, sdk.config({ token }), 'config while queued');
      wire.add('DDPC', 'queued config ' + JSON.stringify({ online: cfg.online, queueInfo: cfg.queueInfo, room: cfg.room }));
      assert.equal(cfg.online, true, 'a visitor with an open room stays online');
      assert.equal(cfg.queueInfo.spot, 1);
      assert.equal(cfg.queueInfo.estimatedWaitTimeSeconds, 120);
      const q = await eventually(() => queueData.find((x) => x && x.spot === 1), WAIT, 'queueData on the stream');
      assert.equal(q.estimatedWaitTimeSeconds, 120);
    });
    await step('transcript: POST livechat/transcript, the e-mail reaches the SMTP server', async () => {
      const r = await within(WAIT, sdk.requestTranscript('ddp.visitor@example.com', { rid }), 'requestTranscript');
      assert.equal(r.message, 'Omnichannel transcript sent');
      const mail = await smtp.wait((m) => m.to.includes('ddp.visitor@example.com'), WAIT);
      const body = decodeQP(mail.data);
      wire.add('SMTP', body.slice(0, 1500));
      assert.equal(mail.from, 'support@example.com');
      assert.match(body, /^Subject: Transcript of your livechat conversation/m);
      assert.ok(body.includes(edited), 'the edited visitor message');
      assert.ok(!body.includes(text + '\r\n'), 'not the text before the edit');
      assert.ok(body.includes(reply), 'the agent reply');
    });
    await step('close: POST livechat/room.close; livechat-close on the stream, no open room left', async () => {
      // The room waits in a queue the agent does not serve (it was told
      // chat_transferred), so no agent is told of the close.
      const r = await within(WAIT, sdk.closeChat({ rid }), 'closeChat');
      assert.equal(r.rid, rid);
      await eventually(() => messages.find((m) => m.t === 'livechat-close' && m.rid === rid), WAIT, 'livechat-close');
      const cfg = await within(WAIT, sdk.config({ token }), 'config after close');
      assert.equal(cfg.room, undefined);
    });
  } finally {
    wire.save();
    agent.close();
    try { sdk.connection.close(); } catch { /* already closed */ }
  }
});
