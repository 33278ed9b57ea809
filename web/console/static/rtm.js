// A client of chatgate's LiveChat Agent Chat API RTM (/v3.5/agent/rtm/ws):
// login with "Bearer <token>", requests matched by request_id, pushes
// handed to onPush, a ping every 15 s, and reconnection with backoff after
// a dropped socket or a server restart. Each (re)login calls onLogin with
// the login payload so that the page can resync.

export class RTM {
  constructor(token, { onLogin, onPush, onState, onAuthFailed }) {
    this.token = token;
    this.onLogin = onLogin;
    this.onPush = onPush;
    this.onState = onState;
    this.onAuthFailed = onAuthFailed;
    this.seq = 0;
    this.pending = new Map();
    this.stopped = false;
    this.backoff = 500;
    this.ws = null;
    this.ready = false;
  }

  start() {
    this.connect();
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/v3.5/agent/rtm/ws`;
  }

  connect() {
    if (this.stopped) return;
    this.onState('connecting');
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener('open', async () => {
      try {
        const r = await this.raw('login', { token: 'Bearer ' + this.token });
        if (!r.success) {
          const type = r.payload && r.payload.error && r.payload.error.type;
          if (type === 'authentication') {
            this.stop();
            this.onAuthFailed();
            return;
          }
          throw new Error(type || 'login failed');
        }
        this.ready = true;
        this.backoff = 500;
        this.onState('connected');
        await this.onLogin(r.payload);
      } catch (e) {
        ws.close();
      }
    });
    ws.addEventListener('message', (m) => this.frame(m.data));
    ws.addEventListener('close', () => {
      this.ready = false;
      clearInterval(this.pinger);
      for (const p of this.pending.values()) p.reject(new Error('disconnected'));
      this.pending.clear();
      if (this.stopped) return;
      this.onState('reconnecting');
      const wait = this.backoff;
      this.backoff = Math.min(this.backoff * 2, 5000);
      setTimeout(() => this.connect(), wait);
    });
    clearInterval(this.pinger);
    this.pinger = setInterval(() => {
      if (this.ready) this.raw('ping').catch(() => {});
    }, 15000);
  }

  frame(text) {
    let f;
    try { f = JSON.parse(text); } catch { return; }
    if (f.type === 'response' && this.pending.has(f.request_id)) {
      const p = this.pending.get(f.request_id);
      this.pending.delete(f.request_id);
      p.resolve(f);
      return;
    }
    if (f.type === 'push') this.onPush(f.action, f.payload || {});
  }

  raw(action, payload) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('not connected'));
    const id = `c${++this.seq}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      ws.send(JSON.stringify(payload === undefined ? { request_id: id, action } : { request_id: id, action, payload }));
    });
  }

  /** Sends a request; resolves with its payload or rejects with its error message. */
  async call(action, payload) {
    const r = await this.raw(action, payload);
    if (!r.success) {
      const e = (r.payload && r.payload.error) || {};
      throw new Error(e.message || e.type || `${action} failed`);
    }
    return r.payload;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pinger);
    if (this.ws) this.ws.close();
  }
}

/** Uploads a file through the agent Web API; resolves with its URL. */
export async function uploadFile(token, file) {
  const body = new FormData();
  body.append('file', file, file.name);
  const r = await fetch('/v3.5/agent/action/upload_file', {
    method: 'POST', headers: { Authorization: 'Bearer ' + token }, body,
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((j.error && j.error.message) || `upload failed (${r.status})`);
  return j.url;
}
