/**
 * Starts a real Debian mosquitto on free loopback ports with a temporary config: plain TCP, a TLS
 * listener (throwaway CA and server certificate made with openssl), and a WebSocket listener.
 * `stop()` kills it by PID and removes the directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where mosquitto is installed on Debian. */
export const MOSQUITTO = '/usr/sbin/mosquitto';

/** A running mosquitto. */
export interface MosquittoBroker {
  port: number;
  tlsPort: number;
  wsPort: number;
  /** PEM of the CA that signed the server certificate (for `tls.ca`). */
  ca: Buffer;
  caFile: string;
  dir: string;
  pid: number;
  /** Stops (SIGTERM, so a persistent session store is written) and starts it again on the same ports. */
  restart(): Promise<void>;
  /** Stops it (SIGTERM: the persistent store is written) until `resume()`. */
  pause(): Promise<void>;
  /** Starts it again on the same ports, after `pause()`. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** A free loopback TCP port (bound and released; small race accepted in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = netConnect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`mosquitto did not open port ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Makes a CA and a server certificate for 127.0.0.1 / localhost in `dir`. */
export function makeCertificates(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const f = (name: string): string => join(dir, name);
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' });
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=Starling Test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '1', '-extfile', f('ext.cnf')]);
  return { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
}

/** True when this machine has mosquitto (tests that need it are skipped otherwise, with a reason). */
export function hasMosquitto(): boolean {
  return existsSync(MOSQUITTO);
}

/** Extra listeners: each gets a free port, appended to the config as `listener PORT 127.0.0.1` and its lines. */
export interface MosquittoOptions {
  extraListeners?: ReadonlyArray<readonly string[]>;
  /** Global options, before the listeners (e.g. `max_inflight_messages 1000`). */
  settings?: readonly string[];
}

/** Starts mosquitto; the caller must `stop()` it (in an `after` hook). `extraPorts` are the ports of `extraListeners`. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoBroker & { extraPorts: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'starling-mosquitto-'));
  const { caFile, certFile, keyFile } = makeCertificates(dir);
  const [port, tlsPort, wsPort] = [await freePort(), await freePort(), await freePort()];
  const extraPorts: number[] = [];
  const extra: string[] = [];
  for (const lines of options.extraListeners ?? []) {
    const extraPort = await freePort();
    extraPorts.push(extraPort);
    extra.push(`listener ${extraPort} 127.0.0.1`, ...lines);
  }
  const config = [
    // As root, mosquitto drops to the "mosquitto" user, who cannot read our 0700 temp directory.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'per_listener_settings false',
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    'log_dest none',
    ...(options.settings ?? []),
    `listener ${port} 127.0.0.1`,
    `listener ${tlsPort} 127.0.0.1`,
    `cafile ${caFile}`,
    `certfile ${certFile}`,
    `keyfile ${keyFile}`,
    `listener ${wsPort} 127.0.0.1`,
    'protocol websockets',
    ...extra,
    '',
  ].join('\n');
  const configFile = join(dir, 'mosquitto.conf');
  writeFileSync(configFile, config);
  let child: ChildProcess;
  const launch = async (): Promise<void> => {
    child = spawn(MOSQUITTO, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}: ${stderr}`))));
    await Promise.race([Promise.all([port, tlsPort, wsPort, ...extraPorts].map((p) => waitForPort(p, 5000))), exited]);
    exited.catch(() => undefined);
  };
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    if (child.pid !== undefined) process.kill(child.pid, signal);
    const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  };
  await launch();
  return {
    port,
    extraPorts,
    tlsPort,
    wsPort,
    ca: readFileSync(caFile),
    caFile,
    dir,
    get pid() {
      return child.pid ?? -1;
    },
    async restart() {
      await kill('SIGTERM');
      await launch();
    },
    async pause() {
      await kill('SIGTERM');
    },
    async resume() {
      await launch();
    },
    async stop() {
      await kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
