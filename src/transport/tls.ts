/** The MQTT over TLS listener: certificates reloadable on SIGHUP, optional client certificates. */
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Listener, StreamInfo } from './types.js';
import { closeServer, listenOn, socketInfo, trackConnections } from './listen.js';

/** Where a TLS listener binds and which certificates it uses. */
export interface TlsListenerOptions {
  name?: string;
  host: string;
  port: number;
  /** Server certificate chain (PEM). */
  certFile: string;
  /** Private key of the server certificate (PEM). */
  keyFile: string;
  /** CA certificates (PEM) that client certificates must chain to. */
  caFile?: string;
  /** Refuse the TLS handshake of a client without a certificate signed by `caFile`. */
  requireClientCert?: boolean;
  /** Lowest TLS version accepted (default TLSv1.2). */
  minVersion?: tls.SecureVersion;
  /** OpenSSL cipher list for TLS 1.2 and below (default: Node's). */
  ciphers?: string;
  /** Milliseconds a client may take to finish the handshake (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Told of each failed handshake (bad or missing client certificate, wrong protocol, timeout). */
  onClientError?: (error: Error, remoteAddress: string | undefined) => void;
}

/**
 * MQTT over TLS (mqtts). With `requireClientCert`, only clients with a certificate signed by the CA
 * get past the handshake, and the certificate's subject is passed on as `certificateSubject`.
 */
export class TlsListener implements Listener {
  readonly name: string;
  private server: tls.Server | undefined;
  private open: ReadonlySet<Socket> = new Set();

  constructor(private readonly options: TlsListenerOptions) {
    this.name = options.name ?? 'tls';
    if (options.requireClientCert === true && options.caFile === undefined) {
      throw new Error('a TLS listener that requires client certificates needs a CA file');
    }
  }

  /** Reads the certificate, key and CA files (at start and on reload). */
  private secureContextOptions(): tls.SecureContextOptions {
    const o = this.options;
    const context: tls.SecureContextOptions = {
      cert: readFileSync(o.certFile),
      key: readFileSync(o.keyFile),
      minVersion: o.minVersion ?? 'TLSv1.2',
    };
    if (o.caFile !== undefined) context.ca = readFileSync(o.caFile);
    if (o.ciphers !== undefined) context.ciphers = o.ciphers;
    return context;
  }

  listen(onStream: (stream: Duplex, info: StreamInfo) => void): Promise<AddressInfo> {
    const requireCert = this.options.requireClientCert === true;
    const server = tls.createServer({
      ...this.secureContextOptions(),
      requestCert: requireCert,
      rejectUnauthorized: requireCert,
      handshakeTimeout: this.options.handshakeTimeoutMs ?? 10_000,
    });
    this.open = trackConnections(server);
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      socket.setNoDelay(true);
      const info = socketInfo(socket, this.name);
      if (requireCert && socket.authorized) {
        const subject = subjectOf(socket.getPeerCertificate());
        if (subject !== undefined) info.certificateSubject = subject;
      }
      onStream(socket, info);
    });
    server.on('tlsClientError', (error: Error, socket: tls.TLSSocket) => {
      this.options.onClientError?.(error, socket.remoteAddress);
    });
    this.server = server;
    return listenOn(server, this.options.host, this.options.port);
  }

  /** Re-reads the certificate, key and CA files; new handshakes use them, open connections stay. Throws (keeping the old ones) if a file is bad. */
  reload(): void {
    const server = this.server;
    const context = this.secureContextOptions();
    // Building a context first checks the files (e.g. a key that does not match) before anything changes.
    tls.createSecureContext(context);
    server?.setSecureContext(context);
  }

  /** Stops accepting; a handshake that never completes does not hold the shutdown up. */
  close(): Promise<void> {
    return closeServer(this.server, this.open);
  }
}

/** The subject of a peer certificate as field → value (multi-valued fields joined with ","). */
function subjectOf(certificate: tls.PeerCertificate): Record<string, string> | undefined {
  const subject = certificate.subject as Record<string, string | string[] | undefined> | undefined;
  if (subject === undefined || subject === null) return undefined;
  const out: Record<string, string> = {};
  for (const [field, value] of Object.entries(subject)) {
    if (value === undefined) continue;
    out[field] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}
