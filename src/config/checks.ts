/**
 * Checks that need several keys at once (a certificate with its key, TLS keys only on TLS
 * listeners, unique listener names, bridges, auth.http and webhooks). Each message names the source and the key.
 */
import { checkBridges } from './bridges.js';
import { checkHttpAuth, checkWebhooks } from './http-services.js';
import { duplicateNames, planListeners } from './listeners.js';
import type { ListenerConfig, StarlingConfig } from './schema.js';

const TLS_KEYS = ['certFile', 'keyFile', 'caFile', 'requireClientCert', 'useIdentityAsUsername', 'usernameField', 'minVersion', 'ciphers'] as const;
const CLIENT_CERT_KEYS = ['caFile', 'requireClientCert', 'useIdentityAsUsername', 'usernameField', 'minVersion', 'ciphers'] as const;

/** Every cross-key problem of `config`; `source(key)` names where a top-level key came from ("starling.json", "command line"). */
export function crossCheck(config: StarlingConfig, source: (key: string) => string): string[] {
  const errors: string[] = [];
  const tls = config.tls;
  if (tls !== undefined) {
    const at = source('tls');
    if (tls.certFile === undefined || tls.keyFile === undefined) errors.push(`${at}: TLS needs both a certificate and a key (--tls-cert and --tls-key, or tls.certFile and tls.keyFile)`);
    if (tls.requireClientCert === true && tls.caFile === undefined) errors.push(`${at}: requiring client certificates needs the CA that signs them (--tls-ca or tls.caFile)`);
    if (tls.usernameField !== undefined && tls.requireClientCert !== true) errors.push(`${at}: a certificate user name field needs --require-client-cert (tls.requireClientCert)`);
  }
  const jwt = config.auth?.jwt;
  if (jwt !== undefined && (jwt.keyFile === undefined) === (jwt.jwksFile === undefined)) {
    errors.push(`${source('auth')}: JWT authentication needs exactly one of a key file (--jwt-key, auth.jwt.keyFile) and a JWKS file (--jwt-jwks, auth.jwt.jwksFile)`);
  }
  if (config.auth?.http !== undefined) errors.push(...checkHttpAuth(config.auth.http, `${source('auth')}: auth.http`));
  const ws = config.websocket;
  if (ws !== undefined && (ws.certFile === undefined) !== (ws.keyFile === undefined)) {
    errors.push(`${source('websocket')}: wss needs both a certificate and a key (--ws-tls-cert and --ws-tls-key, or websocket.certFile and websocket.keyFile)`);
  }
  config.listeners.forEach((listener, i) => errors.push(...checkListener(listener, `${source('listeners')}: listeners[${i}]`)));
  if (errors.length === 0) errors.push(...duplicateNames(planListeners(config)).map((e) => `${source('listeners')}: ${e}`));
  errors.push(...checkBridges(config.bridges, (i) => `${source('bridges')}: bridges[${i}]`));
  errors.push(...checkWebhooks(config.webhooks, (i) => `${source('webhooks')}: webhooks[${i}]`));
  return errors;
}

function checkListener(l: ListenerConfig, at: string): string[] {
  const errors: string[] = [];
  const secure = l.protocol === 'mqtts' || l.protocol === 'wss';
  const web = l.protocol === 'ws' || l.protocol === 'wss';
  if (l.host !== undefined && l.hosts !== undefined) errors.push(`${at}: give host or hosts, not both`);
  if (!secure) {
    for (const key of TLS_KEYS) {
      if (l[key] !== undefined) errors.push(`${at}.${key} is for TLS listeners (protocol mqtts or wss); this one is ${l.protocol}${key === 'certFile' ? ` (set protocol "${web ? 'wss' : 'mqtts'}")` : ''}`);
    }
  } else if (l.certFile === undefined || l.keyFile === undefined) {
    errors.push(`${at}: ${l.protocol === 'wss' ? 'a' : 'an'} ${l.protocol} listener needs certFile and keyFile (the server certificate and its key)`);
  }
  if (l.protocol === 'wss') {
    for (const key of CLIENT_CERT_KEYS) if (l[key] !== undefined) errors.push(`${at}.${key} is not supported on wss listeners (only on mqtts)`);
  }
  if (l.protocol === 'mqtts') {
    if (l.requireClientCert === true && l.caFile === undefined) errors.push(`${at}.requireClientCert needs caFile (the CA that signs client certificates)`);
    if ((l.useIdentityAsUsername === true || l.usernameField !== undefined) && l.requireClientCert !== true) {
      errors.push(`${at}.${l.usernameField === undefined ? 'useIdentityAsUsername' : 'usernameField'} needs requireClientCert: true (the user name comes from the client certificate)`);
    }
    if (l.useIdentityAsUsername === true && l.usernameField !== undefined) errors.push(`${at}: give useIdentityAsUsername (CN) or usernameField, not both`);
  }
  if (!web) {
    for (const key of ['path', 'trustedProxies'] as const) if (l[key] !== undefined) errors.push(`${at}.${key} is for WebSocket listeners (protocol ws or wss); this one is ${l.protocol}`);
  }
  return errors;
}
