/**
 * Fan-in throughput over plain TCP and over TLS, for Starling and (when installed) Mosquitto, in one
 * run: PUBLISHERS connections publish QoS 0 messages as fast as the broker takes them; one subscriber
 * on `bench/#` counts what arrives. Also measures the connect rate with password hashing on.
 *
 *     node --import tsx bench/tls-fan-in.ts [seconds-per-case]
 *
 * Not a test: prints figures for docs/security.md. Brokers it starts are killed by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { PasswordFile } from '../src/auth/password-file.js';
import { DEFAULT_PBKDF2_ITERATIONS, hashPassword } from '../src/auth/password-hash.js';
import { encodePacket } from '../src/protocol/encoder.js';
import { makeTestCertificates } from '../test/helpers/certs.js';
import { freePort } from '../test/helpers/mosquitto.js';

const SECONDS = Number(process.argv[2] ?? 5);
const PUBLISHERS = 16;
const PAYLOAD = Buffer.alloc(64, 0x61);
const certs = makeTestCertificates();
const children: ChildProcess[] = [];

interface Target {
  port: number;
  tls: boolean;
}

function open(target: Target): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = target.tls
      ? tls.connect({ host: '127.0.0.1', port: target.port, ca: certs.ca, servername: 'localhost' }, () => resolve(socket))
      : net.connect({ host: '127.0.0.1', port: target.port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function mqttConnect(target: Target, clientId: string, username?: string, password?: string): Promise<Duplex> {
  const socket = await open(target);
  const connect = encodePacket(
    { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId, ...(username === undefined ? {} : { username, password: Buffer.from(password ?? '') }) },
    4,
  );
  socket.write(connect);
  await new Promise<void>((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => (chunk[0] === 0x20 && chunk[3] === 0 ? resolve() : reject(new Error(`CONNACK ${chunk[3]}`))));
  });
  return socket;
}

async function fanIn(target: Target): Promise<number> {
  const subscriber = await mqttConnect(target, 'bench-sub');
  subscriber.write(encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'bench/#', qos: 0 }] }, 4));
  await new Promise((resolve) => subscriber.once('data', resolve));
  const packets = Array.from({ length: PUBLISHERS }, (_, i) => encodePacket({ type: 'publish', topic: `bench/${String(i).padStart(2, '0')}`, payload: PAYLOAD, qos: 0, retain: false, dup: false }, 4));
  const packetSize = (packets[0] as Buffer).length;
  let bytes = 0;
  subscriber.on('data', (chunk: Buffer) => (bytes += chunk.length));
  let running = true;
  const publishers = await Promise.all(packets.map((_, i) => mqttConnect(target, `bench-pub-${i}`)));
  publishers.forEach((socket, i) => {
    const batch = Buffer.concat(Array.from({ length: 64 }, () => packets[i] as Buffer));
    const pump = (): void => {
      while (running && socket.write(batch));
    };
    socket.on('drain', pump);
    pump();
  });
  await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up
  const start = bytes;
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const rate = (bytes - start) / packetSize / ((Date.now() - started) / 1000);
  running = false;
  for (const socket of [...publishers, subscriber]) socket.destroy();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return rate;
}

async function connectRate(target: Target, users: number): Promise<number> {
  const started = Date.now();
  const sockets = await Promise.all(Array.from({ length: users }, (_, i) => mqttConnect(target, `auth-${i}`, 'bench', 'bench-password')));
  const rate = users / ((Date.now() - started) / 1000);
  for (const socket of sockets) socket.destroy();
  return rate;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`port ${port} never opened`);
}

function run(file: string, args: string[]): void {
  const child = spawn(file, args, { stdio: 'ignore' });
  children.push(child);
}

async function main(): Promise<void> {
  const passwordFile = join(certs.dir, 'passwd');
  const file = new PasswordFile();
  file.entries.set('bench', await hashPassword('bench-password', DEFAULT_PBKDF2_ITERATIONS));
  writeFileSync(passwordFile, file.serialize(), { mode: 0o644 });

  const [sPort, sTls, sAuth] = [await freePort(), await freePort(), await freePort()];
  run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--port', String(sPort), '--tls-port', String(sTls), '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--log-level', 'warn']);
  run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--port', String(sAuth), '--password-file', passwordFile, '--log-level', 'warn']);
  await Promise.all([waitPort(sPort), waitPort(sTls), waitPort(sAuth)]);
  const results: Record<string, string> = {};
  results['starling tcp'] = (await fanIn({ port: sPort, tls: false })).toFixed(0);
  results['starling tls'] = (await fanIn({ port: sTls, tls: true })).toFixed(0);
  results[`starling connects/s, PBKDF2 ${DEFAULT_PBKDF2_ITERATIONS}`] = (await connectRate({ port: sAuth, tls: false }, 200)).toFixed(0);

  if (existsSync('/usr/sbin/mosquitto')) {
    const [mPort, mTls] = [await freePort(), await freePort()];
    const config = join(certs.dir, 'mosquitto.conf');
    const root = process.getuid?.() === 0 ? 'user root\n' : '';
    writeFileSync(config, `${root}per_listener_settings false\nallow_anonymous true\nlog_dest none\nlistener ${mPort} 127.0.0.1\nlistener ${mTls} 127.0.0.1\ncafile ${certs.caFile}\ncertfile ${certs.server.certFile}\nkeyfile ${certs.server.keyFile}\n`);
    run('/usr/sbin/mosquitto', ['-c', config]);
    await Promise.all([waitPort(mPort), waitPort(mTls)]);
    results['mosquitto tcp'] = (await fanIn({ port: mPort, tls: false })).toFixed(0);
    results['mosquitto tls'] = (await fanIn({ port: mTls, tls: true })).toFixed(0);
  }
  for (const [name, value] of Object.entries(results)) process.stdout.write(`${name.padEnd(40)} ${value}${name.includes('connects') ? '' : ' msg/s delivered'}\n`);
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    certs.cleanup();
  });
