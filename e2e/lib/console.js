'use strict';
// Helpers for chatgate's own pages (/console, /console/ops, /demo) in
// Chromium: selection by role and label, numbered screenshots.

const { launch } = require('./browser');
const { artifactPath } = require('./artifacts');

const { WAIT } = require('./steps');

/** Opens a fresh Chromium profile; shot(label) writes <prefix>-NN-label.png. */
async function openBrowser(prefix, wire) {
  const b = await launch(wire);
  let n = 0;
  return {
    ...b,
    async shot(label, page = b.page) {
      const p = artifactPath(`${prefix}-${String(++n).padStart(2, '0')}-${label}.png`);
      await page.screenshot({ path: p, animations: 'disabled', fullPage: true });
      if (wire) wire.add('SHOT', p);
      return p;
    },
  };
}

/** The console page of one agent. */
function consolePage(page) {
  const chats = page.getByRole('navigation', { name: 'Chats' });
  const c = {
    page,
    async loginPassword(base, user, password) {
      await page.goto(base + '/console');
      await page.getByLabel('User name or e-mail').fill(user);
      await page.getByLabel('Password', { exact: true }).fill(password);
      await page.getByRole('button', { name: 'Log in', exact: true }).click();
      await c.connected();
    },
    async loginToken(base, token) {
      await page.goto(base + '/console');
      await page.getByLabel('Agent token').fill(token);
      await page.getByRole('button', { name: 'Log in with token' }).click();
      await c.connected();
    },
    connection: () => page.getByRole('banner').getByRole('status').first(),
    async connected() {
      await page.getByRole('banner').getByText('Connected', { exact: true }).waitFor({ timeout: WAIT });
    },
    chat: (name) => chats.getByRole('button', { name: new RegExp(name) }),
    list: (heading) => chats.getByRole('list', { name: new RegExp(`^${heading}`) }),
    messages: () => page.getByRole('log', { name: 'Messages' }),
    composer: () => page.getByLabel('Message', { exact: true }),
    async open(name) {
      await c.chat(name).first().click();
      await page.getByRole('heading', { level: 2, name }).waitFor({ timeout: WAIT });
    },
    async send(text, { note = false } = {}) {
      const box = page.getByLabel('Private note (agents only)');
      if ((await box.isChecked()) !== note) await box.setChecked(note);
      await c.composer().fill(text);
      await c.composer().press('Enter');
      await c.messages().getByText(text, { exact: true }).first().waitFor({ timeout: WAIT });
      if (note) await box.setChecked(false);
    },
  };
  return c;
}

module.exports = { openBrowser, consolePage, WAIT };
