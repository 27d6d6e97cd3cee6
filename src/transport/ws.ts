/** MQTT over WebSocket: upgrades turned into streams for the broker, behind a trusted proxy if configured. */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { BlockList, isIPv6, type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Listener, StreamInfo } from './types.js';
import { listenOn } from './listen.js';

/** WebSocket sub-protocols a client may ask for: "mqtt" (3.1.1 and 5), "mqttv3.1" (3.1). */
const SUBPROTOCOLS = ['mqtt', 'mqttv3.1'] as const;
/** Bytes the WebSocket may hold unsent before a write waits for the socket (backpressure). */
const SEND_HIGH_WATER = 256 * 1024;
/** How long a closing WebSocket may wait for the peer's close frame before it is cut. */
const CLOSE_GRACE_MS = 1000;

/** How MQTT-over-WebSocket upgrades are accepted, wherever the HTTP server comes from. */
export interface WebSocketGatewayOptions {
  /** Listener name given to the broker ("ws", "wss"). */
  name: string;
  /** URL path that carries MQTT (default "/mqtt"). */
  path?: string;
  /**
   * Proxies (addresses or CIDR ranges) whose X-Forwarded-For header is believed. From any other
   * peer the header is ignored: a client could otherwise claim any address.
   */
  trustedProxies?: readonly string[];
  /** Largest WebSocket message accepted, in bytes. */
  maxPayload?: number;
}

/**
 * Turns HTTP upgrade requests on a path into MQTT streams. Used by the WebSocket listener and by
 * the HTTP server (so the dashboard can speak MQTT on the port it was loaded from).
 */
export class WebSocketGateway {
  readonly name: string;
  readonly path: string;
  private readonly trusted: BlockList | undefined;
  private readonly wss: WebSocketServer;
  private onStream: ((stream: Duplex, info: StreamInfo) => void) | undefined;

  constructor(options: WebSocketGatewayOptions) {
    this.name = options.name;
    this.path = options.path ?? '/mqtt';
    this.trusted = trustedList(options.trustedProxies ?? []);
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: options.maxPayload ?? 268_435_460,
      clientTracking: true,
      handleProtocols: (offered) => SUBPROTOCOLS.find((p) => offered.has(p)) ?? false,
    });
  }

  /** Where accepted streams go. */
  start(onStream: (stream: Duplex, info: StreamInfo) => void): void {
    this.onStream = onStream;
  }

  /** Takes an upgrade request when its path is ours; returns false to let the caller answer it. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(request.url) !== this.path) return false;
    const onStream = this.onStream;
    if (onStream === undefined) {
      socket.destroy();
      return true;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const info: StreamInfo = { listener: this.name };
      const address = clientAddress(request, this.trusted);
      if (address !== undefined) info.remoteAddress = address;
      if (request.socket.remotePort !== undefined) info.remotePort = request.socket.remotePort;
      onStream(new WebSocketStream(ws), info);
    });
    return true;
  }

  /** Cuts every WebSocket still open (after the broker had its chance to close them cleanly). */
  terminateAll(): void {
    for (const ws of this.wss.clients) ws.terminate();
  }
}

/** Where a WebSocket listener binds, and whether it speaks TLS (wss). */
export interface WebSocketListenerOptions extends Partial<WebSocketGatewayOptions> {
  host: string;
  port: number;
  /** PEM certificate and key (contents or file paths): the listener becomes wss. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** MQTT over WebSocket (ws, or wss with a certificate), on its own port. */
export class WebSocketListener implements Listener {
  readonly name: string;
  private readonly gateway: WebSocketGateway;
  private server: Server | undefined;

  constructor(private readonly options: WebSocketListenerOptions) {
    this.name = options.name ?? (options.tls === undefined ? 'ws' : 'wss');
    const gatewayOptions: WebSocketGatewayOptions = { name: this.name };
    if (options.path !== undefined) gatewayOptions.path = options.path;
    if (options.trustedProxies !== undefined) gatewayOptions.trustedProxies = options.trustedProxies;
    if (options.maxPayload !== undefined) gatewayOptions.maxPayload = options.maxPayload;
    this.gateway = new WebSocketGateway(gatewayOptions);
  }

  listen(onStream: (stream: Duplex, info: StreamInfo) => void): Promise<AddressInfo> {
    const tls = this.options.tls;
    const server = tls === undefined ? createHttpServer() : createHttpsServer({ cert: pem(tls.cert), key: pem(tls.key) });
    server.on('request', (_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      response.end(`MQTT over WebSocket: connect to ${this.gateway.path} with sub-protocol "mqtt"\n`);
    });
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.gateway.handleUpgrade(request, socket, head)) {
        socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      }
    });
    this.gateway.start(onStream);
    this.server = server;
    return listenOn(server, this.options.host, this.options.port);
  }

  close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      // The broker has sent its close frames; a peer that does not answer is not waited for.
      setTimeout(() => this.gateway.terminateAll(), CLOSE_GRACE_MS).unref();
    });
  }
}

/**
 * One WebSocket as a byte stream: each binary message is a chunk, whatever MQTT packets it holds
 * (a packet split over messages, or several packets in one, both decode the same). Each write is
 * one binary message.
 */
export class WebSocketStream extends Duplex {
  constructor(private readonly ws: WebSocket) {
    super({ allowHalfOpen: false });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        // [MQTT-6.0.0-1] a text frame closes the connection.
        ws.close(1003, 'MQTT uses binary frames');
        this.destroy();
        return;
      }
      if (!this.push(toBuffer(data))) ws.pause();
    });
    ws.once('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (error: Error) => this.destroy(error));
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      callback(new Error('WebSocket is not open'));
      return;
    }
    if (this.ws.bufferedAmount < SEND_HIGH_WATER) {
      this.ws.send(chunk, { binary: true });
      callback();
    } else {
      // Let the socket take what it has before accepting more: the broker sees writableLength grow.
      this.ws.send(chunk, { binary: true }, callback);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const ws = this.ws;
    if (ws.readyState === ws.OPEN) ws.close(1000);
    if (ws.readyState !== ws.CLOSED) setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    callback(error);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function pem(value: string | Buffer): string | Buffer {
  // Contents when it looks like PEM, a file path otherwise.
  return typeof value === 'string' && !value.includes('-----BEGIN') ? readFileSync(value) : value;
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** An IPv4-mapped IPv6 address ("::ffff:10.0.0.1") as plain IPv4. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function trustedList(entries: readonly string[]): BlockList | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

function isTrusted(list: BlockList, address: string): boolean {
  try {
    return list.check(address, isIPv6(address) ? 'ipv6' : 'ipv4');
  } catch {
    return false; // not an address at all
  }
}

/**
 * The client's address: the peer's, unless the peer is a trusted proxy, in which case the
 * X-Forwarded-For chain is walked from the right past every trusted hop.
 */
export function clientAddress(request: IncomingMessage, trusted: BlockList | undefined): string | undefined {
  const peer = request.socket.remoteAddress === undefined ? undefined : plainAddress(request.socket.remoteAddress);
  if (peer === undefined || trusted === undefined || !isTrusted(trusted, peer)) return peer;
  const header = request.headers['x-forwarded-for'];
  const chain = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((hop) => plainAddress(hop.trim()))
    .filter((hop) => hop.length > 0);
  let address = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    address = chain[i]!;
    if (!isTrusted(trusted, address)) return address;
  }
  return address;
}
