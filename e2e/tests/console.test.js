'use strict';
// chatgate's agent console (/console) in Debian's headless Chromium, with
// the demo page (/demo) as the visitors' website: the real Rocket.Chat
// widget and chatgate's small LiveChat v2 widget. Two agents in two
// browser profiles. Screenshots of every step: e2e/artifacts/console-*.png.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startGateway } = require('../lib/gateway');
const { WireLog } = require('../lib/artifacts');
const { stepper, eventually } = require('../lib/steps');
const { openBrowser, consolePage, WAIT } = require('../lib/console');
const { connectCustomer } = require('../lib/customer');

const JONES = Object.freeze({ id: 'jones@example.com', name: 'Agent Jones', token: 'e2e-jones-token-0123456789abcdef', password: 'e2e-jones-password' });
// A 2x2 red PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

let gw;
before(async () => {
  // A Rocket.Chat custom field (only defined keys are kept, as Rocket.Chat does).
  gw = await startGateway('console', { admin: true, agents: [JONES],
    rocketchat: ['custom_fields:', '  - {id: company, label: Company}'] });
});
after(async () => {
  if (gw) await gw.stop();
});

// The Rocket.Chat widget inside the demo page.
function rcWidget(page) {
  const frame = page.frameLocator('#rocketchat-iframe');
  return {
    frame,
    bubble: () => frame.locator('[class*="screen__chat-button"]'),
    composer: () => frame.locator('[class*="composer__input"]'),
    text: (t) => frame.locator('[class*="message-text"]', { hasText: t }),
    async start(name, email, text) {
      await this.bubble().waitFor({ state: 'visible', timeout: WAIT });
      await this.bubble().click();
      const form = frame.getByPlaceholder('Insert your Name here...');
      await this.composer().or(form).filter({ visible: true }).first().waitFor({ timeout: WAIT });
      if (await form.isVisible()) {
        await form.fill(name);
        await frame.getByPlaceholder('Insert your Email here...').fill(email);
        await frame.getByRole('button', { name: 'Start chat' }).click();
      }
      await this.composer().waitFor({ state: 'visible', timeout: WAIT });
      await this.composer().click();
      await page.keyboard.type(text);
      await page.keyboard.press('Enter');
      await frame.locator('[class*="message-container--reverse"]', { hasText: text }).first().waitFor({ timeout: WAIT });
    },
  };
}

// The LiveChat v2 widget of the demo page.
function v2Widget(page) {
  const log = page.getByRole('log', { name: 'LiveChat v2 messages' });
  return {
    log,
    async start(name, text) {
      await page.getByLabel('Your name').fill(name);
      await page.getByLabel('Message', { exact: true }).fill(text);
      await page.getByRole('button', { name: 'Start chat' }).click();
      await log.getByText(text).waitFor({ timeout: WAIT });
    },
  };
}

test('console: two visitors, answers, a private note, a file, a transfer, a close, a reload and a restart', async (t) => {
  const wire = new WireLog('console-flow');
  const smithB = await openBrowser('console-smith', wire);
  const jonesB = await openBrowser('console-jones', wire);
  const visitorB = await openBrowser('console-visitors', wire);
  const smith = consolePage(smithB.page);
  const jones = consolePage(jonesB.page);
  const vpage = visitorB.page;
  const rc = rcWidget(vpage);
  const v2 = v2Widget(vpage);
  const step = stepper(t, async (name, e) => {
    wire.add('FAILED', `${name}: ${e.message}`);
    await smithB.shot('FAILED').catch(() => {});
    await visitorB.shot('FAILED').catch(() => {});
    await jonesB.shot('FAILED').catch(() => {});
  });
  try {
    await step('the first page links to the console, the operator view and the demo', async () => {
      await smithB.page.goto(gw.url + '/');
      for (const name of ['Agent console', 'Operator view', 'Demo page']) {
        await smithB.page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name }).waitFor({ timeout: WAIT });
      }
      await smithB.shot('first-page');
    });
    await step('Agent Smith logs in with his password; connected and accepting chats', async () => {
      await smith.loginPassword(gw.url, gw.agent.username, gw.agent.password);
      await smithB.page.getByText('Status: accepting chats').waitFor({ timeout: WAIT });
      assert.equal(await smithB.page.getByRole('link', { name: 'Operator view' }).isVisible(), true, 'admin sees the operator view link');
      await smithB.shot('logged-in');
    });
    await step('a Rocket.Chat widget visitor and a LiveChat v2 visitor start chats on /demo', async () => {
      await vpage.goto(gw.url + '/demo');
      await rc.start('Vera Widget', 'vera@example.invalid', 'Hello from the Rocket.Chat widget');
      await v2.start('Victor Vtwo', 'Hello from the v2 widget');
      await visitorB.shot('visitors-started');
    });
    await step('the console announces both chats (list, source, unread count, tab title)', async () => {
      await smith.chat('Vera Widget').waitFor({ timeout: WAIT });
      await smith.chat('Victor Vtwo').waitFor({ timeout: WAIT });
      await smith.chat('Vera Widget.*Rocket.Chat widget').waitFor({ timeout: WAIT });
      await smith.chat('Victor Vtwo.*LiveChat v2 widget').waitFor({ timeout: WAIT });
      await eventually(async () => /^\(\d+\) chatgate console$/.test(await smithB.page.title()), WAIT, 'unread count in the title');
      // Screen readers hear it too (a polite status region).
      await smithB.page.getByRole('status').filter({ hasText: /^New (chat|message)/ }).waitFor({ state: 'attached', timeout: WAIT });
      await smithB.shot('announced');
    });
    await step('the agent answers each; the visitors see the answers', async () => {
      await smith.open('Vera Widget');
      await smith.messages().getByText('Hello from the Rocket.Chat widget').waitFor({ timeout: WAIT });
      // Typing in the console shows the widget's typing dots.
      await smith.composer().pressSequentially('Hi Vera');
      await rc.frame.locator('[class*="typing-dots"]').first().waitFor({ state: 'visible', timeout: WAIT });
      await visitorB.shot('widget-sees-agent-typing');
      await smith.send('Hi Vera, Agent Smith here.');
      await smith.open('Victor Vtwo');
      await smith.send('Hi Victor, how can I help?');
      assert.equal(await smith.messages().getByText('Hi Vera, Agent Smith here.').count(), 0, 'another chat\'s messages shown');
      await rc.text('Hi Vera, Agent Smith here.').first().waitFor({ timeout: WAIT });
      await v2.log.getByText('Hi Victor, how can I help?').waitFor({ timeout: WAIT });
      await smithB.shot('answered');
      await visitorB.shot('visitors-see-answers');
    });
    await step('Shift+Enter breaks the line, Enter sends', async () => {
      await smith.composer().fill('line one');
      await smith.composer().press('Shift+Enter');
      await smith.composer().pressSequentially('line two');
      assert.equal(await smith.composer().inputValue(), 'line one\nline two');
      await smith.composer().press('Enter');
      await v2.log.getByText('line two').waitFor({ timeout: WAIT });
    });
    await step('a private note is marked in the console and never reaches the visitors', async () => {
      await smith.send('PRIVATE: this visitor asked twice', { note: true });
      await smith.messages().getByText('Private note, agents only').first().waitFor({ timeout: WAIT });
      await smith.open('Vera Widget');
      await smith.send('PRIVATE: widget visitor note', { note: true });
      // Public messages after the notes: once the visitors show them,
      // the notes would have been shown before them.
      await smith.send('A public line after the note');
      await smith.open('Victor Vtwo');
      await smith.send('Another public line after the note');
      await rc.text('A public line after the note').first().waitFor({ timeout: WAIT });
      await v2.log.getByText('Another public line after the note').waitFor({ timeout: WAIT });
      assert.equal(await v2.log.getByText('PRIVATE', { exact: false }).count(), 0, 'note shown to the v2 visitor');
      assert.equal(await rc.text('PRIVATE').count(), 0, 'note shown to the widget visitor');
      await smithB.shot('private-note');
      await visitorB.shot('visitors-without-note');
    });
    await step('the agent uploads an image; it is shown inline and the visitor gets it', async () => {
      await smithB.page.getByLabel('Attach file').setInputFiles({ name: 'red-square.png', mimeType: 'image/png', buffer: PNG });
      await smith.messages().getByRole('img', { name: 'Image: red-square.png' }).waitFor({ timeout: WAIT });
      await v2.log.getByText('red-square.png').waitFor({ timeout: WAIT });
      await smithB.shot('file-uploaded');
    });
    await step('Agent Jones logs in with his token in a second browser', async () => {
      await jones.loginToken(gw.url, JONES.token);
      await jonesB.shot('jones-logged-in');
    });
    await step('Smith transfers the widget chat to Jones; it moves to Jones\'s console and, Smith being an admin (a supervisor), under his Others\' chats', async () => {
      await smith.open('Vera Widget');
      await smithB.page.getByRole('toolbar', { name: 'Chat actions' }).getByRole('button', { name: 'Transfer' }).click();
      const dlg = smithB.page.getByRole('dialog', { name: 'Transfer chat' });
      await dlg.getByLabel('Transfer to').selectOption({ label: `Agent ${JONES.id} (0 active chats)` });
      await smithB.shot('transfer-dialog');
      await dlg.getByRole('button', { name: 'Transfer' }).click();
      await jones.chat('Vera Widget').waitFor({ timeout: WAIT });
      await eventually(async () => (await smith.list('My chats').getByRole('button', { name: /Vera Widget/ }).count()) === 0, WAIT, 'the chat leaves Smith\'s chats');
      await smith.list('Others\' chats').getByRole('button', { name: /Vera Widget/ }).waitFor({ timeout: WAIT });
      await jones.open('Vera Widget');
      await jones.messages().getByText('Hello from the Rocket.Chat widget').waitFor({ timeout: WAIT });
      await jonesB.shot('jones-has-the-chat');
      await smithB.shot('after-transfer');
    });
    await step('Smith closes the v2 chat after confirming; the visitor is told', async () => {
      await smith.open('Victor Vtwo');
      await smithB.page.getByRole('toolbar', { name: 'Chat actions' }).getByRole('button', { name: 'Close chat' }).click();
      const dlg = smithB.page.getByRole('dialog', { name: 'Close this chat?' });
      await smithB.shot('close-confirm');
      await dlg.getByRole('button', { name: 'Close chat' }).click();
      await v2.log.getByText('The chat was closed.').waitFor({ timeout: WAIT });
      await smith.list('Closed').getByRole('button', { name: /Victor Vtwo/ }).waitFor({ timeout: WAIT });
      await smithB.shot('closed');
      await visitorB.shot('v2-visitor-closed');
    });
    let jonesCount = 0;
    await step('both consoles reload and show the same state', async () => {
      await smithB.page.reload();
      await smith.connected();
      await smith.list('Closed').getByRole('button', { name: /Victor Vtwo/ }).waitFor({ timeout: WAIT });
      assert.equal(await smith.list('My chats').getByRole('button', { name: /Vera Widget/ }).count(), 0, 'transferred chat back in Smith\'s chats');
      await smith.list('Others\' chats').getByRole('button', { name: /Vera Widget/ }).waitFor({ timeout: WAIT });
      await smith.open('Victor Vtwo');
      await smith.messages().getByText('Hi Victor, how can I help?').waitFor({ timeout: WAIT });
      await smith.messages().getByText('PRIVATE: this visitor asked twice').waitFor({ timeout: WAIT });
      await smithB.shot('smith-reloaded');
      await jonesB.page.reload();
      await jones.connected();
      await jones.list('My chats').getByRole('button', { name: /Vera Widget/ }).waitFor({ timeout: WAIT });
      await jones.open('Vera Widget');
      await jones.messages().getByText('A public line after the note').waitFor({ timeout: WAIT });
      jonesCount = await jones.messages().getByRole('listitem').count();
      await jonesB.shot('jones-reloaded');
    });
    await step('chatgate restarts; both consoles reconnect by themselves, nothing shown twice', async () => {
      await gw.kill();
      await smithB.page.getByRole('banner').getByText(/reconnecting/).waitFor({ timeout: WAIT });
      await smithB.shot('server-down');
      await gw.start();
      await smith.connected();
      await jones.connected();
      await jones.messages().getByText('A public line after the note').waitFor({ timeout: WAIT });
      assert.equal(await jones.messages().getByRole('listitem').count(), jonesCount, 'events shown twice after the resync');
      await smithB.shot('reconnected');
      await jonesB.shot('jones-reconnected');
    });
    await step('after the restart a new visitor reaches the reconnected console', async () => {
      const vid = 'e2e-after-restart';
      const body = new URLSearchParams({ licence_id: '100000', welcome_message: 'Hi', name: 'Rita Restart' });
      const r = await fetch(`${gw.url}/visitors/${vid}/chat/start`, { method: 'POST', headers: { 'X-API-Version': '2' }, body });
      const { secured_session_id: sid } = await r.json();
      await fetch(`${gw.url}/visitors/${vid}/chat/send_message`, { method: 'POST', headers: { 'X-API-Version': '2' },
        body: new URLSearchParams({ licence_id: '100000', secured_session_id: sid, message: 'Anyone there after the restart?' }) });
      await smith.chat('Rita Restart').waitFor({ timeout: WAIT });
      await smith.open('Rita Restart');
      await smith.messages().getByText('Anyone there after the restart?').waitFor({ timeout: WAIT });
      await smithB.shot('new-chat-after-restart');
    });
    await step('Smith, an admin, watches Jones\'s chat read-only under Others\' chats and takes it over', async () => {
      await smith.list('Others\' chats').getByRole('button', { name: /Vera Widget/ }).click();
      await smithB.page.getByRole('heading', { level: 2, name: 'Vera Widget' }).waitFor({ timeout: WAIT });
      await smithB.page.getByText('Served by Agent Jones').waitFor({ timeout: WAIT });
      await smithB.page.getByText('Another agent serves this chat').waitFor({ timeout: WAIT });
      await smith.messages().getByText('A public line after the note').waitFor({ timeout: WAIT });
      assert.equal(await smith.composer().isVisible(), false, 'composer shown on another agent\'s chat');
      const bar = smithB.page.getByRole('toolbar', { name: 'Chat actions' });
      assert.equal(await bar.getByRole('button', { name: 'Close chat' }).isVisible(), false, 'close offered on another agent\'s chat');
      await smithB.shot('supervisor-watches');
      await bar.getByRole('button', { name: 'Take over' }).click();
      const dlg = smithB.page.getByRole('dialog', { name: 'Take over this chat?' });
      await dlg.getByRole('button', { name: 'Take over' }).click();
      await smith.list('My chats').getByRole('button', { name: /Vera Widget/ }).waitFor({ timeout: WAIT });
      await smith.composer().waitFor({ state: 'visible', timeout: WAIT });
      await eventually(async () => (await jones.chat('Vera Widget').count()) === 0, WAIT, 'the chat leaves Jones\'s console');
      await smithB.shot('supervisor-took-over');
      await jonesB.shot('jones-after-take-over');
    });
    await step('log out', async () => {
      await smithB.page.getByRole('button', { name: 'Log out' }).click();
      await smithB.page.getByText('Logged out.').waitFor({ timeout: WAIT });
      assert.equal(await smithB.page.evaluate(() => sessionStorage.length), 0, 'token left in sessionStorage');
      assert.ok(!smithB.page.url().includes('token'), 'token in the URL');
    });
    await step('no script errors on the pages', async () => {
      const bad = [...smithB.errors, ...jonesB.errors].filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e));
      assert.deepEqual(bad, []);
    });
  } finally {
    wire.add('ERRORS', JSON.stringify({ smith: smithB.errors, jones: jonesB.errors, visitors: visitorB.errors }));
    wire.save();
    await smithB.close();
    await jonesB.close();
    await visitorB.close();
  }
});

// A pre-chat form filled in a LiveChat customer app (customer-sdk's
// startChat with a filled_form event, as the LiveChat widget sends its
// pre-chat survey) reaches the console with every answer readable, as text.
test('console: a pre-chat form from a customer-sdk visitor is shown with its answers, as text', async (t) => {
  const wire = new WireLog('console-form');
  const b = await openBrowser('console-form', wire);
  const smith = consolePage(b.page);
  const step = stepper(t, (name, e) => { wire.add('FAILED', `${name}: ${e.message}`); return b.shot('FAILED'); });
  const markup = '<b>bold</b><img src=x onerror="window.__xss=1">';
  try {
    await step('Smith logs in', async () => {
      await smith.loginPassword(gw.url, gw.agent.username, gw.agent.password);
    });
    await step('a customer-sdk visitor starts a chat with a filled pre-chat form', async () => {
      const { sdk } = await connectCustomer(t, gw, { clientId: 'e2e-form' });
      await sdk.updateCustomer({ name: 'Fiona Form', email: 'fiona@example.org' });
      await sdk.startChat({ chat: { thread: { events: [
        { type: 'filled_form', form_id: 'prechat-e2e', form_type: 'prechat', fields: [
          { type: 'name', id: 'f-name', label: 'Your name:', answer: 'Fiona Form' },
          { type: 'email', id: 'f-email', label: 'E-mail:', answer: 'fiona@example.org' },
          { type: 'radio', id: 'f-topic', label: 'Topic', answer: { id: '2', label: 'Billing' } },
          { type: 'checkbox', id: 'f-prod', label: 'Products', answers: [{ id: 'a', label: 'Widget' }, { id: 'b', label: 'Desk' }] },
          { type: 'textarea', id: 'f-q', label: 'Your question', answer: `Why is ${markup} here?` },
        ] },
        { type: 'message', text: 'I filled in the form' },
      ] } } });
    });
    await step('the console announces the chat and shows the form\'s answers readably', async () => {
      await smith.chat('Fiona Form').first().waitFor({ timeout: WAIT });
      await smith.open('Fiona Form');
      const log = smith.messages();
      await log.getByText('I filled in the form').waitFor({ timeout: WAIT });
      // customer-sdk 4.0.2 sends the fields only (no form_id or form_type).
      await log.getByText('Filled form', { exact: true }).waitFor({ timeout: WAIT });
      await log.getByText('Filled form', { exact: true }).scrollIntoViewIfNeeded();
      const form = log;
      for (const [label, answer] of [['Your name:', 'Fiona Form'], ['E-mail:', 'fiona@example.org'], ['Topic', 'Billing'],
        ['Products', 'Widget, Desk'], ['Your question', `Why is ${markup} here?`]]) {
        await form.getByRole('term').filter({ hasText: label }).waitFor({ timeout: WAIT });
        await form.getByRole('definition').filter({ hasText: answer }).first().waitFor({ timeout: WAIT });
      }
      assert.equal(await form.locator('b, img').count(), 0, 'form answer parsed as HTML');
      assert.equal(await b.page.evaluate(() => window.__xss), undefined, 'script from a form answer ran');
      await b.shot('form');
    });
  } finally {
    wire.add('ERRORS', JSON.stringify(b.errors));
    wire.save();
    await b.close();
  }
});

// Markup and script sent through every visitor surface: shown as text in
// the console, never run (and the page's CSP forbids inline script anyway).
test('console: markup and script from visitors on every surface are shown as text and never run', async (t) => {
  const wire = new WireLog('console-xss');
  const b = await openBrowser('console-xss', wire);
  const smith = consolePage(b.page);
  const P = '<img src=x onerror="window.__xss=(window.__xss||0)+1"><script>window.__xss=(window.__xss||0)+1</script><b>bold</b>';
  const step = stepper(t, (name, e) => { wire.add('FAILED', `${name}: ${e.message}`); return b.shot('FAILED'); });
  const post = async (path, body, headers = {}) => {
    const r = await fetch(gw.url + path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const j = await r.json().catch(() => ({}));
    assert.ok(r.ok, `${path}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  };
  try {
    await step('Smith logs in, accepting chats', async () => {
      await smith.loginPassword(gw.url, gw.agent.username, gw.agent.password);
    });
    await step('a Rocket.Chat visitor with markup in its name, custom field, message, page title and file name', async () => {
      const token = 'xss-rc-visitor-token-0001';
      await post('/api/v1/livechat/visitor', { visitor: { token, name: `XSS-rc ${P}`, email: 'rc@example.invalid',
        customFields: [{ key: 'company', value: P, overwrite: true }] } });
      const room = await (await fetch(`${gw.url}/api/v1/livechat/room?token=${token}`)).json();
      const rid = room.room._id;
      await post('/api/v1/livechat/message', { token, rid, msg: `rc says ${P}` });
      await post('/api/v1/livechat/page.visited', { token, rid, pageInfo: { change: 'url', title: `Title ${P}`,
        location: { href: 'javascript:window.__xss=1' } } });
      const fd = new FormData();
      fd.append('file', new Blob([PNG], { type: 'image/png' }), '<img src=x onerror=alert(1)>.png');
      const up = await fetch(`${gw.url}/api/v1/livechat/upload/${rid}`, { method: 'POST', headers: { 'x-visitor-token': token }, body: fd });
      assert.ok(up.ok, `upload: ${up.status} ${await up.text()}`);
    });
    await step('Smith stops accepting chats (new chats queue)', async () => {
      await b.page.getByLabel('Accepting chats').setChecked(false);
      await b.page.getByText('Status: not accepting chats').waitFor({ timeout: WAIT });
    });
    await step('a LiveChat v2 visitor with markup in its name, e-mail and message', async () => {
      const v = 'xss-v2-visitor';
      const r = await fetch(`${gw.url}/visitors/${v}/chat/start`, { method: 'POST', headers: { 'X-API-Version': '2' },
        body: new URLSearchParams({ licence_id: '100000', welcome_message: P, name: `XSS-v2 ${P}`, email: 'x@example.invalid' }) });
      const { secured_session_id: sid } = await r.json();
      const s = await fetch(`${gw.url}/visitors/${v}/chat/send_message`, { method: 'POST', headers: { 'X-API-Version': '2' },
        body: new URLSearchParams({ licence_id: '100000', secured_session_id: sid, message: `v2 says ${P}` }) });
      assert.ok(s.ok);
    });
    let customer;
    await step('a LiveChat customer with markup in its name, session fields and message', async () => {
      const tok = await post('/v2/customer/token', { grant_type: 'cookie' });
      customer = { token: tok.access_token, id: tok.entity_id };
      const auth = { Authorization: 'Bearer ' + customer.token };
      const org = '?organization_id=3d5a7f0e-0c1b-4f2a-9b8e-chatgate0001';
      await post('/v3.5/customer/action/update_customer' + org, { name: `XSS-lc ${P}`, session_fields: [{ note: P }] }, auth);
      const s = await post('/v3.5/customer/action/start_chat' + org, { chat: { thread: { events: [{ type: 'message', text: `lc says ${P}` }] } } }, auth);
      customer.chat = s.chat_id;
    });
    await step('the chats are listed, names shown as text (Rocket.Chat\'s mine, the others queued)', async () => {
      await smith.list('My chats').getByRole('button', { name: /XSS-rc/ }).waitFor({ timeout: WAIT });
      for (const n of ['XSS-v2', 'XSS-lc']) {
        await smith.list('Queued').getByRole('button', { name: new RegExp(n) }).waitFor({ timeout: WAIT });
      }
      await b.shot('queued');
    });
    await step('each conversation and visitor panel shows the markup literally; nothing ran', async () => {
      for (const [n, said] of [['XSS-v2', 'v2 says'], ['XSS-rc', 'rc says'], ['XSS-lc', 'lc says']]) {
        await smith.open(n);
        await smith.messages().getByText(`${said} ${P}`, { exact: true }).waitFor({ timeout: WAIT });
        await b.page.getByRole('complementary', { name: 'Visitor' }).getByText(`${n} ${P}`, { exact: true }).waitFor({ timeout: WAIT });
        if (n === 'XSS-rc') {
          await b.page.getByRole('complementary', { name: 'Visitor' }).getByText(P, { exact: true }).first().waitFor({ timeout: WAIT });
          await smith.messages().getByText('<img src=x onerror=alert(1)>.png', { exact: false }).first().waitFor({ timeout: WAIT });
        }
        if (n === 'XSS-lc') {
          await b.page.getByRole('complementary', { name: 'Visitor' }).getByText(P, { exact: true }).first().waitFor({ timeout: WAIT });
          // A sneak peek with markup while the chat is open.
          await post('/v3.5/customer/action/send_sneak_peek?organization_id=3d5a7f0e-0c1b-4f2a-9b8e-chatgate0001',
            { chat_id: customer.chat, sneak_peek_text: `peek ${P}` }, { Authorization: 'Bearer ' + customer.token });
          await b.page.getByText(`is typing: peek ${P}`, { exact: false }).waitFor({ timeout: WAIT });
        }
        await b.shot(`literal-${n}`);
      }
      assert.equal(await b.page.evaluate(() => window.__xss), undefined, 'visitor script ran');
      assert.equal(await b.page.locator('img[src="x"], main b, nav b, aside b, script:not([src])').count(), 0, 'visitor markup became elements');
    });
    await step('Take chat: a queued chat becomes mine', async () => {
      await smith.open('XSS-v2');
      await b.page.getByRole('toolbar', { name: 'Chat actions' }).getByRole('button', { name: 'Take chat' }).click();
      await smith.list('My chats').getByRole('button', { name: /XSS-v2/ }).waitFor({ timeout: WAIT });
      await b.shot('taken');
    });
    await step('tag the taken chat', async () => {
      await b.page.getByRole('toolbar', { name: 'Chat actions' }).getByRole('button', { name: 'Tag' }).click();
      const dlg = b.page.getByRole('dialog', { name: 'Tag chat' });
      await dlg.getByLabel('Tag').fill('vip');
      await dlg.getByRole('button', { name: 'Add tag' }).click();
      await b.page.getByRole('toolbar', { name: 'Chat actions' }).getByRole('button', { name: 'Tag (vip)' }).waitFor({ timeout: WAIT });
      await b.shot('tagged');
    });
    await step('ban the Rocket.Chat visitor after confirming', async () => {
      await smith.open('XSS-rc');
      await b.page.getByRole('toolbar', { name: 'Chat actions' }).getByRole('button', { name: 'Ban visitor' }).click();
      const dlg = b.page.getByRole('dialog', { name: 'Ban this visitor?' });
      await dlg.getByLabel('Days').fill('2');
      await b.shot('ban-confirm');
      await dlg.getByRole('button', { name: 'Ban visitor' }).click();
      await b.page.getByText('Visitor banned.').waitFor({ timeout: WAIT });
    });
    await step('still nothing ran', async () => {
      assert.equal(await b.page.evaluate(() => window.__xss), undefined, 'visitor script ran');
    });
  } finally {
    wire.add('ERRORS', JSON.stringify(b.errors));
    wire.save();
    await b.close();
  }
});

// The operator view: a second chatgate plays the upstream Rocket.Chat desk
// of a relay connector; it goes down and comes back. A webhook whose
// receiver answers 500 fails; once the receiver is fixed the retry button
// delivers it without waiting out the backoff.
test('operator view: a relay connector goes down and comes back; a failed webhook is retried', async (t) => {
  const wire = new WireLog('console-ops');
  // The webhook receiver: 500 until fixed, then 200.
  const received = [];
  let fixed = false;
  const receiver = require('node:http').createServer((req, res) => {
    req.resume();
    received.push({ attempt: req.headers['x-webhook-attempt'] || '', status: fixed ? 200 : 500 });
    res.writeHead(fixed ? 200 : 500).end();
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const hookURL = `http://127.0.0.1:${receiver.address().port}/hook`;
  // The second receiver (incoming_event): records each event's text.
  const received2 = [];
  let fixed2 = false;
  const receiver2 = require('node:http').createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let text = '';
      try { text = JSON.parse(Buffer.concat(chunks).toString()).payload.event.text || ''; } catch { /* not JSON */ }
      received2.push({ text, status: fixed2 ? 200 : 500 });
      res.writeHead(fixed2 ? 200 : 500).end();
    });
  });
  await new Promise((r) => receiver2.listen(0, '127.0.0.1', r));
  const hook2URL = `http://127.0.0.1:${receiver2.address().port}/hook2`;
  const upstream = await startGateway('console-ops-upstream');
  let front;
  const b = await openBrowser('console-ops', wire);
  const page = b.page;
  const step = stepper(t, (name, e) => { wire.add('FAILED', `${name}: ${e.message}`); return b.shot('FAILED'); });
  const relayRow = () => page.getByRole('table', { name: 'Relay connectors' }).getByRole('row', { name: /desk-rc/ });
  const pending = () => page.getByRole('table', { name: 'Pending deliveries' });
  try {
    await step('start a gateway relaying to the upstream desk, webhooks retried only by hand (1 h backoff)', async () => {
      front = await startGateway('console-ops-front', { admin: true, extraYAML: [
        'relay:',
        '  min_backoff: 100ms',
        '  max_backoff: 1s',
        '  connectors:',
        `    - {name: desk-rc, kind: rocketchat, url: "${upstream.url}", timeout: 5s}`,
        '  routes:',
        '    - upstream: desk-rc',
        'webhooks:',
        '  min_backoff: 1h',
        '  max_backoff: 1h',
        '  max_attempts: 2',
        '  allow_http: true',
        '  allow_private_networks: true',
      ].join('\n') });
      // An agent on the upstream desk, so that it takes the relayed chat.
      const { Agent } = require('../lib/agent');
      const deskAgent = await Agent.connect(upstream.url, upstream.agent.token, wire);
      t.after(() => deskAgent.close());
    });
    await step('a webhook to a receiver that answers 500, and a visitor chat that triggers it', async () => {
      const r = await fetch(front.url + '/v3.5/configuration/action/register_webhook', {
        method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + front.agent.token },
        body: JSON.stringify({ action: 'incoming_chat', secret_key: 'e2e-secret-key', url: hookURL,
          owner_client_id: 'e2e-ops', type: 'license', description: 'fails until fixed' }) });
      assert.ok(r.ok, `register_webhook: ${r.status} ${await r.text()}`);
      const s = await fetch(`${front.url}/visitors/ops-visitor/chat/start`, { method: 'POST', headers: { 'X-API-Version': '2' },
        body: new URLSearchParams({ licence_id: '100000', welcome_message: 'Hi', name: 'Olga Ops' }) });
      assert.ok(s.ok);
    });
    await step('the admin agent opens the operator view: connector connected, webhook delivery failing', async () => {
      await consolePage(page).loginPassword(front.url, front.agent.username, front.agent.password);
      await page.getByRole('link', { name: 'Operator view' }).click();
      await relayRow().getByText('connected', { exact: true }).waitFor({ timeout: WAIT });
      await pending().getByRole('row', { name: /incoming_chat/ }).waitFor({ timeout: WAIT });
      await page.getByRole('table', { name: 'Registered' }).getByText(hookURL).waitFor({ timeout: WAIT });
      await pending().getByRole('row', { name: /HTTP 500/ }).waitFor({ timeout: WAIT });
      await page.getByRole('table', { name: 'Active conversations by source' }).getByText('livechat.v2 → desk-rc').waitFor({ timeout: WAIT });
      await b.shot('ops-healthy');
    });
    await step('the upstream desk goes down: the connector shows disconnected with its error', async () => {
      await upstream.kill();
      await relayRow().getByText('disconnected', { exact: true }).waitFor({ timeout: WAIT });
      await b.shot('ops-relay-down');
    });
    await step('the upstream desk comes back: connected again, a reconnect counted', async () => {
      await upstream.start();
      await relayRow().getByText('connected', { exact: true }).waitFor({ timeout: WAIT });
      await b.shot('ops-relay-back');
    });
    await step('the receiver is fixed; the retry button delivers the failed webhook now, not in an hour', async () => {
      const row = pending().getByRole('row', { name: /incoming_chat/ });
      await row.getByRole('cell', { name: '1', exact: true }).waitFor({ timeout: WAIT });
      await b.shot('ops-webhook-failed');
      fixed = true;
      await page.getByRole('button', { name: 'Retry waiting deliveries now' }).click();
      await pending().getByText('Nothing waiting.').waitFor({ timeout: WAIT });
      assert.deepEqual(received.map((r) => `${r.attempt}:${r.status}`), ['1:500', '2:200']);
      await b.shot('ops-webhook-retried');
    });
    await step('deliveries given up on while the receiver fails are revived by the operator and delivered in order', async () => {
      // A second receiver that fails until fixed; two attempts exhaust a
      // delivery (webhooks.max_attempts on this gateway is 2), and "Retry
      // waiting deliveries now" makes the second attempt without the 1 h
      // wait: each press gives up on the failing head and tries the next.
      fixed2 = false;
      const r = await fetch(front.url + '/v3.5/configuration/action/register_webhook', {
        method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + front.agent.token },
        body: JSON.stringify({ action: 'incoming_event', secret_key: 'e2e-secret-key-2', url: hook2URL,
          owner_client_id: 'e2e-ops', type: 'license', description: 'exhausted until fixed' }) });
      assert.ok(r.ok, `register_webhook: ${r.status} ${await r.text()}`);
      const vid = 'ops-revive-visitor';
      const s = await fetch(`${front.url}/visitors/${vid}/chat/start`, { method: 'POST', headers: { 'X-API-Version': '2' },
        body: new URLSearchParams({ licence_id: '100000', welcome_message: 'Hi', name: 'Rex Revive' }) });
      const { secured_session_id: sid } = await s.json();
      for (const m of ['first', 'second', 'third']) {
        const sm = await fetch(`${front.url}/visitors/${vid}/chat/send_message`, { method: 'POST', headers: { 'X-API-Version': '2' },
          body: new URLSearchParams({ licence_id: '100000', secured_session_id: sid, message: `revive ${m}` }) });
        assert.ok(sm.ok);
      }
      const exhausted = page.getByRole('table', { name: 'Given up (exhausted)' });
      const revived = () => received2.filter((x) => x.status === 200 && x.text.startsWith('revive ')).map((x) => x.text);
      const failed = () => new Set(received2.filter((x) => x.text.startsWith('revive ')).map((x) => x.text)).size;
      // The chat's first delivery fails and holds back the others (order).
      await eventually(async () => failed() >= 1, WAIT, 'the first delivery failed');
      await pending().getByRole('row', { name: /incoming_event.*HTTP 500/ }).first().waitFor({ timeout: WAIT });
      await eventually(async () => {
        if ((await exhausted.getByRole('row', { name: /incoming_event/ }).count()) >= 3 &&
          (await pending().getByRole('row', { name: /incoming_event/ }).count()) === 0) return true;
        await page.getByRole('button', { name: 'Retry waiting deliveries now' }).click();
        await new Promise((r) => setTimeout(r, 1000));
        return false;
      }, 2 * WAIT, 'every incoming_event delivery given up');
      assert.equal(failed(), 3, 'each message\'s delivery was tried');
      assert.deepEqual(revived(), [], 'delivered before the receiver was fixed');
      await b.shot('ops-webhook-exhausted');
      fixed2 = true;
      await page.getByRole('button', { name: 'Retry given-up deliveries' }).click();
      await exhausted.getByText('None.').waitFor({ timeout: WAIT });
      await eventually(async () => revived().length === 3, WAIT, 'three revived deliveries');
      assert.deepEqual(revived(), ['revive first', 'revive second', 'revive third']);
      await b.shot('ops-webhook-revived');
    });
    await step('a non-admin token is refused', async () => {
      const r = await fetch(front.url + '/console/api/ops', { headers: { Authorization: 'Bearer not-a-token-at-all-000000' } });
      assert.equal(r.status, 401);
    });
  } finally {
    wire.add('ERRORS', JSON.stringify(b.errors));
    wire.save();
    await b.close();
    if (front) await front.stop();
    await upstream.stop();
    await new Promise((r) => receiver.close(r));
    await new Promise((r) => receiver2.close(r));
  }
});
