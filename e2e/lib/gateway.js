'use strict';
// Runs one chatgate binary for a test file: 127.0.0.1 on a free port (the
// kernel picks it: --addr 127.0.0.1:0, read back from the start-up log), a
// temporary data file and a test config with one agent. The process is
// always stopped: by stop(), and — should the test process end early — on
// exit, SIGINT, SIGTERM, SIGHUP, or when the test runner that started this
// file goes away.

const { spawn, execFileSync } = require('node:child_process');
const https = require('node:https');
const fs = require('node:fs');
const os = require('node:os');
const { WAIT } = require('./steps');
const path = require('node:path');
const { artifactPath } = require('./artifacts');

const E2E_DIR = path.resolve(__dirname, '..');
const ROOT = path.resolve(E2E_DIR, '..');

// The test agent (configured below): LiveChat RTM token and Rocket.Chat
// password login.
const AGENT = Object.freeze({
  id: 'smith@example.com',
  name: 'Agent Smith',
  username: 'agent.smith',
  token: 'e2e-agent-token-0123456789abcdef',
  password: 'e2e-agent-password',
});

const live = new Set(); // child processes still running
const tempDirs = new Set(); // their data directories

function killAllSync() {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  live.clear();
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

let guarded = false;
function installGuards() {
  if (guarded) return;
  guarded = true;
  process.on('exit', killAllSync);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.on(sig, () => {
      killAllSync();
      process.exit(code);
    });
  }
  // Orphaned (the runner was killed without signalling us): clean up.
  const parent = process.ppid;
  const t = setInterval(() => {
    if (process.ppid !== parent) {
      killAllSync();
      process.exit(1);
    }
  }, 1000);
  t.unref();
}

function binPath() {
  const bin = process.env.CHATGATE_BIN || path.join(ROOT, 'bin', 'chatgate');
  if (!fs.existsSync(bin)) {
    throw new Error(`chatgate binary not found at ${bin}: run \`make e2e\` (it builds it) or set CHATGATE_BIN`);
  }
  return bin;
}

function widgetDir() {
  return process.env.WIDGET_DIR || path.join(ROOT, 'web', 'livechat');
}

// opts.departments ([{id, name}]) replaces the default department list,
// opts.agentDepartments lists the departments the agent serves (default:
// all), opts.rocketchat adds lines to the rocketchat section and
// opts.smtp ({host, port, from}) configures e-mail (tls: none).
function configYAML(dir, tls, opts = {}) {
  const more = (opts.agents || []).flatMap((a) => [
    `  - id: ${a.id}`,
    `    name: ${JSON.stringify(a.name)}`,
    `    token: ${a.token}`,
    ...(a.password ? [`    password: ${a.password}`] : []),
    ...(a.admin ? ['    admin: true'] : []),
  ]);
  return [
    'log:',
    '  level: debug',
    '  format: json',
    'server:',
    '  shutdown_timeout: 5s',
    ...(tls ? [`  tls_cert_file: ${JSON.stringify(tls.certFile)}`, `  tls_key_file: ${JSON.stringify(tls.keyFile)}`] : []),
    'rocketchat:',
    '  enabled: true',
    `  widget_dir: ${JSON.stringify(widgetDir())}`,
    ...(opts.rocketchat || []).map((l) => '  ' + l),
    'store:',
    `  files_dir: ${JSON.stringify(path.join(dir, 'files'))}`,
    ...(opts.departments ? ['departments:', ...opts.departments.map((d) => `  - {id: ${JSON.stringify(d.id)}, name: ${JSON.stringify(d.name)}}`)] : []),
    ...(opts.smtp ? ['smtp:', `  host: ${opts.smtp.host}`, `  port: ${opts.smtp.port}`, `  from: ${JSON.stringify(opts.smtp.from)}`, '  tls: none'] : []),
    'agents:',
    `  - id: ${AGENT.id}`,
    `    name: ${AGENT.name}`,
    '    job_title: Support Agent',
    `    username: ${AGENT.username}`,
    `    token: ${AGENT.token}`,
    `    password: ${AGENT.password}`,
    ...(opts.agentDepartments ? [`    departments: ${JSON.stringify(opts.agentDepartments)}`] : []),
    ...(opts.admin ? ['    admin: true'] : []),
    ...more,
    ...(opts.extraYAML ? [opts.extraYAML] : []),
    '',
  ].join('\n');
}

/**
 * Makes a throwaway self-signed certificate (ECDSA P-256, 1 day) for
 * 127.0.0.1 and localhost in dir with the openssl command. Returns
 * {certFile, keyFile, pem}.
 */
function makeCertificate(dir) {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'pipe' });
  return { certFile, keyFile, pem: fs.readFileSync(certFile, 'utf8') };
}

function readyStatus(url, ca) {
  if (!ca) return fetch(url + '/readyz').then((r) => r.status);
  return new Promise((resolve, reject) => {
    const req = https.get(url + '/readyz', { ca }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
  });
}

async function waitReady(url, child, deadline, ca) {
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`chatgate exited with ${child.exitCode}`);
    try {
      const status = await readyStatus(url, ca);
      if (status === 200) return;
      last = `readyz ${status}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`chatgate not ready: ${last}`);
}

/**
 * Starts chatgate. Returns {url, addr, agent, log(), stop()} and, with
 * {tls: true}, tls: {certFile, keyFile, pem}.
 * name labels the artifacts (chatgate log in e2e/artifacts/<name>-chatgate.log).
 *
 * TLS: opts.tls makes a throwaway certificate for 127.0.0.1 (openssl) and
 * starts chatgate with server.tls_cert_file/tls_key_file, so it serves
 * HTTPS and WSS only; url is then https://127.0.0.1:<port>. Clients must
 * trust tls.pem: pass it as `ca` where the client lets you, or call
 * trustCertificate(pem) (below) for clients that take no TLS options
 * (lc-sdk-js). opts.agents adds agents ({id, name, token, password,
 * admin}); opts.admin makes the test agent an admin (operator view).
 * opts.extraYAML is appended to the test config (top-level
 * keys other than log, server, rocketchat, store and agents). NODE_EXTRA_CA_CERTS would also do, but Node reads it only
 * at start-up, before this file could have made the certificate.
 */
async function startGateway(name, opts = {}) {
  installGuards();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-e2e-'));
  tempDirs.add(dir);
  const tls = opts.tls ? makeCertificate(dir) : null;
  const cfg = path.join(dir, 'chatgate.yaml');
  fs.writeFileSync(cfg, configYAML(dir, tls, opts), { mode: 0o600 });
  const logFile = artifactPath(`${name}-chatgate.log`);
  const logStream = fs.createWriteStream(logFile);
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('CHATGATE_')) delete env[k];

  let child = null;
  let exited = null;
  let logText = '';
  const onData = (b) => {
    logText += b.toString();
    logStream.write(b);
  };
  // spawn runs chatgate on addr (127.0.0.1:0 the first time; a restart
  // takes the same port again, so that clients reconnect to it).
  const spawnOn = (addr) => {
    const from = logText.length;
    child = spawn(binPath(), ['--config', cfg, '--data', path.join(dir, 'chatgate.db'), '--addr', addr],
      { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: ROOT });
    live.add(child);
    const c = child;
    c.stdout.on('data', onData);
    c.stderr.on('data', onData);
    exited = new Promise((resolve) => c.on('exit', (code, sig) => {
      live.delete(c);
      resolve({ code, sig });
    }));
    return from;
  };
  const kill = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    }
  };

  const stop = async () => {
    await kill();
    await new Promise((r) => logStream.end(r));
    fs.rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };

  const waitServing = async (from) => {
    const deadline = Date.now() + WAIT;
    let addr = '';
    while (!addr && Date.now() < deadline) {
      const text = logText.slice(from);
      const m = /"addr":"(127\.0\.0\.1:\d+)"[^\n]*"message":"chatgate serving"|"message":"chatgate serving"[^\n]*"addr":"(127\.0\.0\.1:\d+)"/.exec(text);
      if (m) addr = m[1] || m[2];
      else if (child.exitCode !== null) throw new Error(`chatgate exited with ${child.exitCode}:\n${text}`);
      else await new Promise((r) => setTimeout(r, 50));
    }
    if (!addr) throw new Error(`chatgate did not report its address:\n${logText.slice(from)}`);
    const url = `${tls ? 'https' : 'http'}://${addr}`;
    await waitReady(url, child, deadline, tls && tls.pem);
    return { addr, url };
  };

  try {
    const { addr, url } = await waitServing(spawnOn('127.0.0.1:0'));
    // restart stops chatgate (SIGTERM) and starts it again on the same
    // address and data file; down(ms), if given, waits that long between.
    const restart = async (downMs = 0) => {
      await kill();
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      await waitServing(spawnOn(addr));
    };
    return { url, addr, agent: AGENT, tls, dir, log: () => logText, stop, restart, kill,
      start: async () => { await waitServing(spawnOn(addr)); } };
  } catch (e) {
    await stop();
    throw e;
  }
}

const trusted = new Set();
/**
 * Makes every TLS connection of this process (ws, https, axios) trust pem
 * besides the usual roots, with verification left on: tls.connect gets
 * ca = [...tls.rootCertificates, ...trusted] unless a caller passed its own.
 * For clients that take no TLS options, such as @livechat/lc-sdk-js.
 */
function trustCertificate(pem) {
  const tls = require('node:tls');
  if (trusted.size === 0) {
    const connect = tls.connect;
    tls.connect = function patchedConnect(...args) {
      const i = args.findIndex((a) => a && typeof a === 'object');
      if (i >= 0 && !args[i].ca) args[i] = { ...args[i], ca: [...tls.rootCertificates, ...trusted] };
      return connect.apply(this, args);
    };
  }
  trusted.add(pem);
}

module.exports = { startGateway, trustCertificate, AGENT, tempDirs };
