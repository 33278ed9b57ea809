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

const JONES = Object.freeze({ id: 'jones@example.com', name: 'Agent Jones', token: 'e2e-jones-token-0123456789abcdef', password: 'e2e-jones-password' });
// A 2x2 red PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');

let gw;
before(async () => {
  gw = await startGateway('console', { admin: true, agents: [JONES] });
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
      await smithB.shot('announced');
    });
    await step('the agent answers each; the visitors see the answers', async () => {
      await smith.open('Vera Widget');
      await smith.messages().getByText('Hello from the Rocket.Chat widget').waitFor({ timeout: WAIT });
      await smith.send('Hi Vera, Agent Smith here.');
      await smith.open('Victor Vtwo');
      await smith.send('Hi Victor, how can I help?');
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
    await step('Smith transfers the widget chat to Jones; it moves to Jones\'s console', async () => {
      await smith.open('Vera Widget');
      await smithB.page.getByRole('toolbar', { name: 'Chat actions' }).getByRole('button', { name: 'Transfer' }).click();
      const dlg = smithB.page.getByRole('dialog', { name: 'Transfer chat' });
      await dlg.getByLabel('Transfer to').selectOption({ label: `Agent ${JONES.id} (0 active chats)` });
      await smithB.shot('transfer-dialog');
      await dlg.getByRole('button', { name: 'Transfer' }).click();
      await jones.chat('Vera Widget').waitFor({ timeout: WAIT });
      await eventually(async () => (await smith.chat('Vera Widget').count()) === 0, WAIT, 'the chat leaves Smith\'s list');
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
      assert.equal(await smith.chat('Vera Widget').count(), 0, 'transferred chat back in Smith\'s list');
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
