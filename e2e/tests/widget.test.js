'use strict';
// The real Rocket.Chat livechat widget (@rocket.chat/livechat 1.13.3, from
// `make widget`) embedded in a host page through its loader
// (/livechat/rocketchat-livechat.min.js, as Rocket.Chat's installation
// snippet does), driven in Debian's headless Chromium, against chatgate; a
// test agent answers over the LiveChat agent RTM websocket.
//
// Screenshots of every step go to e2e/artifacts/widget-*.png, the page's
// HTTP/DDP traffic and the agent's RTM frames to widget-*-wire.txt, and
// chatgate's log to widget-*-chatgate.log.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const { startGateway } = require('../lib/gateway');
const { Agent } = require('../lib/agent');
const { launch } = require('../lib/browser');
const { artifactPath, WireLog } = require('../lib/artifacts');
const { stepper, WAIT } = require('../lib/steps');

let gw;
let host; // http server of the host page
let hostURL;

before(async () => {
  gw = await startGateway('widget');
  host = http.createServer((req, res) => {
    if (req.url !== '/host.html') {
      res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
      return;
    }
    // Rocket.Chat's installation snippet (spec §2.3), pointed at chatgate.
    const page = `<!doctype html><html><head><meta charset="utf-8"><title>chatgate e2e host page</title></head>
<body style="font-family:sans-serif;background:#f4f4f4">
<h1>Host page embedding the Rocket.Chat livechat widget</h1>
<p>Loader: ${gw.url}/livechat/rocketchat-livechat.min.js, iframe: ${gw.url}/livechat (chatgate)</p>
<script type="text/javascript">
(function(w, d, s, u) {
  w.RocketChat = function(c) { w.RocketChat._.push(c) }; w.RocketChat._ = []; w.RocketChat.url = u;
  var h = d.getElementsByTagName(s)[0], j = d.createElement(s);
  j.async = true; j.src = '${gw.url}/livechat/rocketchat-livechat.min.js?_=201903270000';
  h.parentNode.insertBefore(j, h);
})(window, document, 'script', '${gw.url}/livechat');
</script>
</body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page);
  });
  await new Promise((r) => host.listen(0, '127.0.0.1', r));
  hostURL = `http://127.0.0.1:${host.address().port}/host.html`;
});

after(async () => {
  if (host) await new Promise((r) => host.close(r));
  if (gw) await gw.stop();
});

// One browser run: a fresh Chromium profile (a fresh visitor) with the
// host page, helpers for the widget's iframe, and screenshots.
async function openRun(name, wire) {
  const b = await launch(wire);
  const { page } = b;
  const frame = page.frameLocator('#rocketchat-iframe');
  let n = 0;
  // messages.history answers seen by the page: the widget replaces its
  // whole message list with each answer (loadMessages), so a message that
  // arrives on the stream while a fetch is under way disappears from the
  // screen until the next fetch (the widget's own race, as with Rocket.Chat).
  const history = { count: 0, last: 0 };
  page.context().on('response', (r) => {
    if (r.url().includes('/api/v1/livechat/messages.history/')) {
      history.count++;
      history.last = Date.now();
    }
  });
  const run = {
    ...b,
    frame,
    async shot(label) {
      const p = artifactPath(`widget-${name}-${String(++n).padStart(2, '0')}-${label}.png`);
      // Finished animations (the confirm modal fades in).
      await page.screenshot({ path: p, animations: 'disabled' });
      if (wire) wire.add('SHOT', p);
      return p;
    },
    bubble: () => frame.locator('[class*="screen__chat-button"]'),
    composer: () => frame.locator('[class*="composer__input"]'),
    messageText: (text) => frame.locator('[class*="message-text"]', { hasText: text }),
    // The visitor's own messages are drawn on the right (reverse container).
    ownMessage: (text) => frame.locator('[class*="message-container--reverse"]', { hasText: text }),
    typingDots: () => frame.locator('[class*="typing-dots"]'),
    chatFinished: () => frame.locator('[class*="chat-finished"]'),
    async load() {
      await page.goto(hostURL);
      await page.waitForSelector('#rocketchat-iframe', { timeout: WAIT });
    },
    // Opens the chat window unless it is open already (after a reload the
    // widget restores its last state).
    async ensureOpen() {
      const composer = run.composer();
      const bubble = run.bubble();
      await composer.or(bubble).filter({ visible: true }).first().waitFor({ state: 'visible', timeout: WAIT });
      if (!(await composer.first().isVisible())) {
        await bubble.click();
        await composer.waitFor({ state: 'visible', timeout: WAIT });
      }
    },
    // With settings.registrationForm (Rocket.Chat's default) a new visitor
    // first fills in name and e-mail (POST livechat/visitor, spec §7.4).
    registerForm: () => frame.getByPlaceholder('Insert your Name here...'),
    async registerIfAsked(label) {
      await run.composer().or(run.registerForm()).filter({ visible: true }).first().waitFor({ state: 'visible', timeout: WAIT });
      if (await run.composer().first().isVisible()) return false;
      await run.registerForm().fill('Vera Visitor');
      await frame.getByPlaceholder('Insert your Email here...').fill('vera@example.invalid');
      if (label) await run.shot(label);
      await frame.getByRole('button', { name: 'Start chat' }).click();
      await run.visible(run.composer());
      return true;
    },
    async type(text) {
      await run.composer().click();
      await page.keyboard.type(text);
    },
    async send() {
      await page.keyboard.press('Enter');
    },
    historyCount: () => history.count,
    // Waits until the widget has fetched the history at least `atLeast`
    // times since `since` (a historyCount()) and then fetched nothing for
    // `quietMs`: its deferred loadMessages (500 ms after a room appears)
    // has run, so what comes next is not overwritten.
    async settled(since, atLeast, quietMs = 700) {
      const deadline = Date.now() + WAIT;
      while (history.count - since < atLeast || Date.now() - history.last < quietMs) {
        if (Date.now() > deadline) {
          throw new Error(`widget did not settle: ${history.count - since} history fetches (want ${atLeast})`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    visible: (loc) => loc.first().waitFor({ state: 'visible', timeout: WAIT }),
    hidden: (loc) => loc.first().waitFor({ state: 'hidden', timeout: WAIT }),
  };
  return run;
}

// Errors the page must never show (the notification sound must decode).
function assertNoMediaErrors(errors) {
  const bad = errors.filter((e) => /no supported sources|NotSupportedError/i.test(e));
  assert.deepEqual(bad, [], 'media errors on the page');
}

test('widget: visitor chats with an agent, reloads, and finishes the chat', async (t) => {
  const wire = new WireLog('widget-visitor-finishes');
  const agent = await Agent.connect(gw.url, gw.agent.token, wire);
  const run = await openRun('visitor-finishes', wire);
  const step = stepper(t, (name, e) => { wire.add('FAILED', `${name}: ${e.message}`); return run.shot('FAILED'); });
  const first = 'Hello from the e2e visitor';
  const reply = 'Hi! I am Agent Smith. How can I help?';
  const second = 'Second message after reload';
  let chatId;
  try {
    await step('host page loads the widget, minimized', async () => {
      wire.phase('load');
      await run.load();
      await run.visible(run.bubble());
      await run.shot('loaded-minimized');
    });
    await step('open the chat window (and fill in the registration form if shown)', async () => {
      wire.phase('open');
      await run.bubble().click();
      await run.composer().or(run.registerForm()).filter({ visible: true }).first().waitFor({ state: 'visible', timeout: WAIT });
      await run.shot('opened');
      if (await run.registerIfAsked('registration-filled')) await run.shot('registered');
    });
    await step('type and send a message; the widget shows it on the visitor side', async () => {
      wire.phase('send');
      await run.type(first);
      await run.shot('typed');
      const h = run.historyCount();
      await run.send();
      await run.visible(run.ownMessage(first));
      // The room was created by this message; the widget reloads its
      // history 500 ms later.
      await run.settled(h, 1);
      await run.visible(run.ownMessage(first));
      await run.shot('sent');
    });
    await step('the agent receives the message over RTM', async () => {
      const got = await agent.waitVisitorText(first);
      chatId = got.chatId;
      assert.ok(chatId, 'chat id');
    });
    await step('agent typing indicator shows typing dots', async () => {
      wire.phase('agent typing');
      await agent.typing(chatId, true);
      await run.visible(run.typingDots());
      await run.shot('agent-typing');
    });
    await step('agent reply is shown and the dots go away', async () => {
      wire.phase('agent reply');
      await agent.typing(chatId, false);
      await agent.sendMessage(chatId, reply);
      await run.visible(run.messageText(reply));
      assert.equal(await run.ownMessage(reply).count(), 0, 'agent message drawn on the visitor side');
      await run.hidden(run.typingDots());
      await run.visible(run.frame.getByText(gw.agent.name));
      await run.shot('agent-reply');
    });
    await step('reload as a returning visitor: the history is shown', async () => {
      wire.phase('reload');
      const h = run.historyCount();
      await run.page.reload();
      await run.page.waitForSelector('#rocketchat-iframe', { timeout: WAIT });
      await run.ensureOpen();
      await run.visible(run.ownMessage(first));
      await run.visible(run.messageText(reply));
      // History on connect, and again 500 ms after the chat screen mounts.
      await run.settled(h, 2);
      await run.shot('reloaded');
    });
    await step('send a second message after the reload', async () => {
      wire.phase('send second');
      await run.type(second);
      await run.send();
      await run.visible(run.ownMessage(second));
      const got = await agent.waitVisitorText(second);
      assert.equal(got.chatId, chatId, 'same chat');
      await run.shot('sent-second');
    });
    await step('Options → Finish this chat → Yes shows "Chat finished"', async () => {
      wire.phase('finish');
      await run.frame.getByText('Options', { exact: true }).click();
      await run.visible(run.frame.getByText('Finish this chat'));
      await run.shot('options-menu');
      await run.frame.getByText('Finish this chat').click();
      await run.visible(run.frame.getByRole('button', { name: 'Yes' }));
      await run.shot('confirm-finish');
      await run.frame.getByRole('button', { name: 'Yes' }).click();
      await run.visible(run.chatFinished());
      await run.visible(run.frame.getByText('New Chat'));
      await run.shot('chat-finished');
    });
    await step('the agent is told the chat ended', async () => {
      await agent.waitPush((p) => p.action === 'chat_deactivated' && p.payload.chat_id === chatId, WAIT, 'chat_deactivated');
    });
    await step('the notification sound that config points at decodes in Chromium', async () => {
      const cfg = await (await fetch(gw.url + '/api/v1/livechat/config')).json();
      const sound = cfg.config && cfg.config.resources && cfg.config.resources.sound;
      assert.ok(sound, 'config.resources.sound');
      const res = await run.page.evaluate((u) => new Promise((resolve) => {
        const a = new Audio(u);
        a.oncanplaythrough = () => resolve({ ok: true, duration: a.duration });
        a.onerror = () => resolve({ ok: false, code: a.error && a.error.code });
        a.load();
      }), sound);
      assert.ok(res.ok && res.duration > 0, `${sound}: ${JSON.stringify(res)}`);
      assertNoMediaErrors(run.errors);
    });
  } finally {
    wire.add('ERRORS', JSON.stringify(run.errors));
    wire.save();
    agent.close();
    await run.close();
  }
});

test('widget: a fresh visitor sees "Chat finished" when the agent closes the chat', async (t) => {
  const wire = new WireLog('widget-agent-closes');
  const agent = await Agent.connect(gw.url, gw.agent.token, wire);
  const run = await openRun('agent-closes', wire);
  const step = stepper(t, (name, e) => { wire.add('FAILED', `${name}: ${e.message}`); return run.shot('FAILED'); });
  const text = 'Hello, I am a new visitor';
  let chatId;
  try {
    await step('open the widget and send a message', async () => {
      await run.load();
      await run.visible(run.bubble());
      await run.bubble().click();
      await run.registerIfAsked();
      // A fresh profile is a new visitor: no history from the first run.
      assert.equal(await run.frame.locator('[class*="message-text"]').count(), 0, 'history of another visitor shown');
      await run.type(text);
      const h = run.historyCount();
      await run.send();
      await run.visible(run.ownMessage(text));
      await run.settled(h, 1);
      await run.shot('sent');
    });
    await step('the agent receives it in a new chat and replies', async () => {
      const got = await agent.waitVisitorText(text);
      chatId = got.chatId;
      await agent.sendMessage(chatId, 'I will close this chat now.');
      await run.visible(run.messageText('I will close this chat now.'));
      await run.shot('agent-reply');
    });
    await step('agent deactivate_chat → the widget shows "Chat finished"', async () => {
      wire.phase('agent closes');
      await agent.call('deactivate_chat', { id: chatId });
      await run.visible(run.chatFinished());
      await run.visible(run.frame.getByText('New Chat'));
      await run.shot('chat-finished-by-agent');
    });
    await step('no media errors on the page', async () => {
      assertNoMediaErrors(run.errors);
    });
  } finally {
    wire.add('ERRORS', JSON.stringify(run.errors));
    wire.save();
    agent.close();
    await run.close();
  }
});

test('widget: the serving agent stops accepting chats; the reloaded visitor sees the conversation, not the offline form', async (t) => {
  const wire = new WireLog('widget-agent-not-accepting');
  const agent = await Agent.connect(gw.url, gw.agent.token, wire);
  const run = await openRun('agent-not-accepting', wire);
  const step = stepper(t, (name, e) => { wire.add('FAILED', `${name}: ${e.message}`); return run.shot('FAILED'); });
  const text = 'Hello, please stay with me';
  const reply = 'I am here, but I take no new chats now.';
  let chatId;
  try {
    await step('open the widget, send a message, the agent replies', async () => {
      await run.load();
      await run.visible(run.bubble());
      await run.bubble().click();
      await run.registerIfAsked();
      await run.type(text);
      const h = run.historyCount();
      await run.send();
      await run.visible(run.ownMessage(text));
      await run.settled(h, 1);
      const got = await agent.waitVisitorText(text);
      chatId = got.chatId;
      await agent.sendMessage(chatId, reply);
      await run.visible(run.messageText(reply));
      await run.shot('chatting');
    });
    await step('the agent switches to not_accepting_chats: nobody takes new chats', async () => {
      wire.phase('not accepting');
      await agent.call('set_routing_status', { status: 'not_accepting_chats' });
      const cfg = await (await fetch(gw.url + '/api/v1/livechat/config')).json();
      assert.equal(cfg.config.online, false, 'a new visitor would get the offline form');
    });
    await step('reload: the widget shows the conversation and the composer, not "Leave a message"', async () => {
      wire.phase('reload');
      const h = run.historyCount();
      await run.page.reload();
      await run.page.waitForSelector('#rocketchat-iframe', { timeout: WAIT });
      await run.ensureOpen();
      await run.visible(run.ownMessage(text));
      await run.visible(run.messageText(reply));
      await run.settled(h, 2);
      assert.equal(await run.frame.getByText('Leave a message').count(), 0, 'offline form shown');
      await run.visible(run.composer());
      await run.shot('reloaded-conversation');
    });
    await step('the conversation goes on: a new message reaches the agent', async () => {
      await run.type('Still here');
      await run.send();
      await run.visible(run.ownMessage('Still here'));
      const got = await agent.waitVisitorText('Still here');
      assert.equal(got.chatId, chatId, 'same chat');
      await run.shot('sent-after-reload');
    });
  } finally {
    // The gateway is shared by this file's tests: accept chats again.
    await agent.call('set_routing_status', { status: 'accepting_chats' }).catch(() => {});
    wire.add('ERRORS', JSON.stringify(run.errors));
    wire.save();
    agent.close();
    await run.close();
  }
});
