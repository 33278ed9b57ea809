'use strict';
// A tiny SMTP listener for the end-to-end tests: 127.0.0.1 on a free port,
// no TLS, no auth; it accepts every message and keeps it, so a test can
// wait for the e-mail chatgate sends (chatgate's smtp.tls: none). Enough of
// RFC 5321 for one client: EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed),
// RSET, NOOP, QUIT.

const net = require('node:net');

class SMTPSink {
  constructor() {
    this.mails = []; // {from, to: [], data}
    this.waiters = [];
    this.sockets = new Set();
    this.server = net.createServer((sock) => this.session(sock));
  }

  /** Starts listening; resolves with {host, port}. */
  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        const { port } = this.server.address();
        this.host = '127.0.0.1';
        this.port = port;
        resolve({ host: this.host, port });
      });
    });
  }

  session(sock) {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => {});
    sock.setEncoding('latin1');
    let buf = '';
    let inData = false;
    let data = [];
    let from = '';
    let to = [];
    const reply = (s) => sock.write(s + '\r\n');
    reply('220 localhost ESMTP e2e sink');
    sock.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            this.add({ from, to, data: data.join('\r\n') });
            data = [];
            reply('250 2.0.0 queued');
          } else {
            data.push(line.startsWith('..') ? line.slice(1) : line);
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') reply('250 localhost');
        else if (verb === 'MAIL') { from = (/<([^>]*)>/.exec(line) || [])[1] || ''; to = []; reply('250 2.1.0 ok'); }
        else if (verb === 'RCPT') { to.push((/<([^>]*)>/.exec(line) || [])[1] || ''); reply('250 2.1.5 ok'); }
        else if (verb === 'DATA') { inData = true; reply('354 end with <CRLF>.<CRLF>'); }
        else if (verb === 'RSET') { from = ''; to = []; reply('250 2.0.0 ok'); }
        else if (verb === 'NOOP') reply('250 2.0.0 ok');
        else if (verb === 'QUIT') { reply('221 2.0.0 bye'); sock.end(); }
        else reply('502 5.5.2 not implemented');
      }
    });
  }

  add(mail) {
    this.mails.push(mail);
    for (const w of [...this.waiters]) {
      if (w.pred(mail)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(mail);
      }
    }
  }

  /** Resolves with the first mail (kept or arriving) pred accepts. */
  wait(pred, timeoutMs) {
    const seen = this.mails.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`smtp: no matching mail within ${timeoutMs} ms (${this.mails.length} received)`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close() {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Decodes quoted-printable text (soft breaks and =XX escapes). */
function decodeQP(s) {
  const bytes = Buffer.from(s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return bytes.toString('utf8');
}

module.exports = { SMTPSink, decodeQP };
