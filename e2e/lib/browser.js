'use strict';
// Debian's Chromium driven by playwright-core (no `npx playwright install`):
// headless, a fresh user-data-dir per launch (so a fresh visitor), every
// request, response and websocket frame of the page written to a WireLog.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { tempDirs } = require('./gateway'); // removed on exit and on signals

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launches Chromium with a fresh profile; resolves with {context, page, close()}. */
async function launch(wire) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-e2e-chromium-'));
  tempDirs.add(dataDir);
  const context = await chromium.launchPersistentContext(dataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1000, height: 720 },
    timeout: 60000,
  });
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  if (wire) {
    context.on('request', (r) => {
      const body = r.postData();
      wire.add('HTTP>', `${r.method()} ${r.url()}${body ? ' body=' + body.slice(0, 400) : ''}`);
    });
    context.on('response', async (r) => {
      let body = '';
      const ct = r.headers()['content-type'] || '';
      if (ct.includes('json')) {
        try { body = ' ' + (await r.text()).slice(0, 600); } catch { /* gone */ }
      }
      wire.add('HTTP<', `${r.status()} ${r.request().method()} ${r.url()}${body}`);
    });
    context.on('requestfailed', (r) => wire.add('HTTP!', `${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
  }
  const watch = (p) => {
    p.on('websocket', (ws) => {
      if (wire) wire.add('WS', `open ${ws.url()}`);
      ws.on('framesent', (f) => wire && wire.add('DDP>', String(f.payload).slice(0, 600)));
      ws.on('framereceived', (f) => wire && wire.add('DDP<', String(f.payload).slice(0, 600)));
      ws.on('close', () => wire && wire.add('WS', `close ${ws.url()}`));
    });
    p.on('pageerror', (e) => {
      errors.push(e.message);
      if (wire) wire.add('PAGEERROR', e.message);
    });
    p.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') {
        if (wire) wire.add(`CONSOLE.${m.type()}`, m.text().slice(0, 400));
        if (m.type() === 'error') errors.push(m.text());
      }
    });
  };
  watch(page);
  context.on('page', watch);
  return {
    context,
    page,
    errors,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(dataDir, { recursive: true, force: true });
      tempDirs.delete(dataDir);
    },
  };
}

module.exports = { launch };
