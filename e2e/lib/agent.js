'use strict';
// A test agent on chatgate's LiveChat Agent Chat API RTM websocket
// (/v3.5/agent/rtm/ws): login with "Bearer <token>", requests by
// request_id, pushes kept in order so a test can wait for one.

const WebSocket = require('ws');
const { WAIT } = require('./steps');

class Agent {
  constructor(ws, wire) {
    this.ws = ws;
    this.wire = wire; // optional WireLog
    this.seq = 0;
    this.pending = new Map(); // request_id -> {resolve, reject, timer}
    this.pushes = []; // every push, in order
    this.waiters = []; // {pred, resolve, reject, timer}
    this.closed = false;
    ws.on('message', (data) => this.onFrame(data.toString()));
    ws.on('close', () => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new Error('agent socket closed'));
      for (const w of this.waiters) w.reject(new Error('agent socket closed'));
      this.pending.clear();
      this.waiters = [];
      clearInterval(this.pinger);
    });
    // The server closes a logged-in socket silent for 30 s.
    this.pinger = setInterval(() => { if (!this.closed) this.request('ping').catch(() => {}); }, 10000);
    this.pinger.unref();
  }

  /** Connects and logs in; resolves with the login response payload. */
  static async connect(baseURL, token, wire) {
    const url = baseURL.replace(/^http/, 'ws') + '/v3.5/agent/rtm/ws';
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const a = new Agent(ws, wire);
    const r = await a.request('login', { token: 'Bearer ' + token });
    if (!r.success) throw new Error('agent login failed: ' + JSON.stringify(r.payload));
    a.profile = r.payload;
    return a;
  }

  onFrame(text) {
    if (this.wire) this.wire.add('RTM<', text.length > 600 ? text.slice(0, 600) + '…' : text);
    let f;
    try { f = JSON.parse(text); } catch { return; }
    if (f.type === 'response' && this.pending.has(f.request_id)) {
      const p = this.pending.get(f.request_id);
      this.pending.delete(f.request_id);
      clearTimeout(p.timer);
      p.resolve(f);
      return;
    }
    if (f.type === 'push') {
      this.pushes.push(f);
      for (const w of [...this.waiters]) {
        if (w.pred(f)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(f);
        }
      }
    }
  }

  /** Sends a request; resolves with the response frame (success or not). */
  request(action, payload, timeoutMs = WAIT) {
    if (this.closed) return Promise.reject(new Error('agent socket closed'));
    const rid = `e2e-${++this.seq}`;
    const frame = JSON.stringify(payload === undefined ? { request_id: rid, action } : { request_id: rid, action, payload });
    if (this.wire && action !== 'ping') this.wire.add('RTM>', frame);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new Error(`no response to ${action} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rid, { resolve, reject, timer });
      this.ws.send(frame);
    });
  }

  /** Like request, but rejects unless the response is a success. */
  async call(action, payload, timeoutMs) {
    const r = await this.request(action, payload, timeoutMs);
    if (!r.success) throw new Error(`${action} failed: ${JSON.stringify(r.payload)}`);
    return r.payload;
  }

  /**
   * Resolves with the first push (already received, or arriving within
   * timeoutMs) for which pred(push) is true.
   */
  waitPush(pred, timeoutMs = WAIT, what = 'push') {
    const seen = this.pushes.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`agent: no ${what} within ${timeoutMs} ms; pushes so far: ` +
          this.pushes.map((p) => p.action).join(', ')));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /**
   * Waits until a visitor message with this text reached the agent, in an
   * incoming_chat (the thread's first events) or an incoming_event push.
   * Resolves with {chatId, threadId, event}.
   */
  async waitVisitorText(text, timeoutMs = WAIT) {
    const find = (p) => {
      if (p.action === 'incoming_event' && p.payload.event && p.payload.event.text === text) {
        return { chatId: p.payload.chat_id, threadId: p.payload.thread_id, event: p.payload.event };
      }
      if (p.action === 'incoming_chat' && p.payload.chat && p.payload.chat.thread) {
        const ev = (p.payload.chat.thread.events || []).find((e) => e.text === text);
        if (ev) return { chatId: p.payload.chat.id, threadId: p.payload.chat.thread.id, event: ev };
      }
      return null;
    };
    const p = await this.waitPush((x) => find(x) !== null, timeoutMs, `visitor message ${JSON.stringify(text)}`);
    return find(p);
  }

  sendMessage(chatId, text) {
    return this.call('send_event', { chat_id: chatId, event: { type: 'message', text, visibility: 'all' } });
  }

  typing(chatId, isTyping) {
    return this.call('send_typing_indicator', { chat_id: chatId, visibility: 'all', is_typing: isTyping });
  }

  close() {
    clearInterval(this.pinger);
    if (!this.closed) this.ws.close();
  }
}

module.exports = { Agent };
