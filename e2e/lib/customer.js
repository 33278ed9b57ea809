'use strict';
// @livechat/customer-sdk@4.0.2 against a chatgate gateway: the SDK has no
// host option, so a global WebSocket shim rewrites its
// wss://api.livechatinc.com/... URL to the gateway (plain ws://127.0.0.1),
// a custom identityProvider hands it a token from chatgate's POST
// /v2/customer/token (cookie grant), and an Image stub swallows its
// telemetry pixel. The globals are put back and the SDK destroyed when
// the test ends.

const assert = require('node:assert/strict');
const WS = require('ws');
const { WAIT } = require('./steps');

const ORG = '3d5a7f0e-0c1b-4f2a-9b8e-chatgate0001'; // configs/chatgate.example.yaml

function waitFor(emitter, name, pred = () => true, timeoutMs = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${name} within ${timeoutMs} ms`)), timeoutMs);
    const h = (p) => {
      if (!pred(p)) return;
      clearTimeout(t);
      emitter.off(name, h);
      resolve(p);
    };
    emitter.on(name, h);
  });
}

/**
 * Connects a customer-sdk customer to gw. Returns {sdk, tok (the token
 * endpoint's answer), res (its response), connected (the SDK's connected
 * event)}.
 */
async function connectCustomer(t, gw, { clientId = 'e2e' } = {}) {
  const wsBase = gw.url.replace(/^http/, 'ws');
  const saved = { WebSocket: globalThis.WebSocket, Image: globalThis.Image };
  globalThis.WebSocket = class extends WS {
    constructor(url, ...a) {
      const u = new URL(url);
      super(wsBase + u.pathname + u.search, ...a);
    }
  };
  globalThis.Image = class { set src(_) {} };
  t.after(() => Object.assign(globalThis, saved));

  const res = await fetch(gw.url + '/v2/customer/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ response_type: 'token', grant_type: 'cookie', client_id: clientId, organization_id: ORG }),
  });
  assert.equal(res.status, 200);
  const tok = await res.json();
  const token = { accessToken: tok.access_token, entityId: tok.entity_id, expiresIn: tok.expires_in * 1000,
    tokenType: 'Bearer', creationDate: Date.now(), organizationId: ORG };

  const CustomerSDK = require('@livechat/customer-sdk');
  const sdk = CustomerSDK.init({
    organizationId: ORG, clientId,
    identityProvider: () => ({ getToken: async () => token, getFreshToken: async () => token,
      hasToken: async () => true, invalidate: async () => {} }),
  });
  t.after(() => sdk.destroy());
  const connected = await waitFor(sdk, 'connected');
  return { sdk, tok, res, connected };
}

module.exports = { ORG, waitFor, connectCustomer };
