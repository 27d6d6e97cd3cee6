/**
 * A private network for the fault tests: one network namespace per host (Redis, each broker, the
 * clients), each joined by a veth pair to one router namespace that forwards between them. Faults
 * are made in the router only: a partition is a pair of iptables DROP rules (packets vanish, as on a
 * pulled cable: no RST, no ICMP), a slow or lossy link sends its packets through nfq-impair (delay,
 * jitter, loss, reordering; the kernel has no sch_netem). Nothing is added to the host's own network
 * namespace: the test process reaches a host through a loopback port that a forwarder, running
 * inside some namespace, relays (./forwarder.ts).
 *
 * Names carry the test process id and a random tag, so concurrent runs do not collide; every
 * process, rule, veth and namespace goes in `close()`, and again (synchronously) when the test
 * process exits. Addresses are 198.18.N.0/24 (RFC 2544 benchmarking range), inside the namespaces only.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/temp-dir.js';
import { LabProcess } from './lab-process.js';

export { LabProcess } from './lab-process.js';

const run = promisify(execFile);
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip'].find((p) => existsSync(p)) ?? 'ip';
const IPTABLES = ['/usr/sbin/iptables', '/sbin/iptables'].find((p) => existsSync(p));
const FORWARDER = join(import.meta.dirname, 'forwarder.ts');
const IMPAIR_SOURCE = join(import.meta.dirname, 'nfq-impair.c');
const NAME_PREFIX = 'stf-';

/** Every lab of this process, closed synchronously at exit if its `close()` did not run. */
const labs = new Set<Lab>();
process.once('exit', () => {
  for (const lab of labs) lab.closeSync();
});

/** Link settings of nfq-impair (milliseconds, probabilities 0-1). */
export interface ImpairSettings {
  delay?: number;
  jitter?: number;
  loss?: number;
  reorder?: number;
  reorderMs?: number;
}

/** Counters nfq-impair reports. */
export interface ImpairStats {
  seen: number;
  dropped: number;
  delayed: number;
  reordered: number;
}

/** A link between two hosts that runs through nfq-impair. */
export interface Impairment {
  /** Changes the settings while it runs. */
  set(settings: ImpairSettings): void;
  /** The counters so far. */
  stats(): Promise<ImpairStats>;
  /** Takes the link back to normal and returns the final counters. */
  remove(): Promise<ImpairStats>;
}

/** Namespaces, veths and router rules of one test file. */
export class Lab {
  readonly id: string;
  private readonly router: string;
  private readonly processes = new Set<LabProcess>();
  private readonly forwarders = new Map<string, LabProcess>();
  private readonly cuts = new Set<string>();
  private nextQueue = 1;
  private impairBinary: string | undefined;
  private closed = false;

  private constructor(readonly hosts: readonly string[]) {
    this.id = `${NAME_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
    this.router = `${this.id}-router`;
  }

  /**
   * Checks that this machine can run the lab (root, iproute2, iptables, network namespaces) and
   * builds it. Throws one line naming what is missing.
   */
  static async create(hosts: readonly string[]): Promise<Lab> {
    preflight();
    await sweepStale();
    const lab = new Lab(hosts);
    labs.add(lab);
    try {
      await lab.build();
    } catch (error) {
      await lab.close();
      throw error;
    }
    return lab;
  }

  /** The namespace of `host`. */
  namespace(host: string): string {
    if (!this.hosts.includes(host)) throw new Error(`lab: unknown host ${host} (hosts: ${this.hosts.join(', ')})`);
    return `${this.id}-${host}`;
  }

  /** The address of `host` on its veth (reachable from every other host through the router). */
  address(host: string): string {
    const index = this.hosts.indexOf(host);
    if (index < 0) throw new Error(`lab: unknown host ${host}`);
    return `198.18.${index + 1}.2`;
  }

  private async build(): Promise<void> {
    const namespaces = [this.router, ...this.hosts.map((h) => this.namespace(h))];
    for (const ns of namespaces) {
      try {
        await run(IP, ['netns', 'add', ns]);
      } catch (error) {
        throw new Error(`fault tests need network namespaces: "ip netns add ${ns}" failed: ${lastLine(error)}`, { cause: error });
      }
    }
    // One batch per namespace: `ip -n NS -batch -` runs every line inside it.
    const routerLines = ['link set lo up'];
    for (const [i, host] of this.hosts.entries()) {
      const ns = this.namespace(host);
      routerLines.push(`link add v${i + 1} type veth peer name eth0 netns ${ns}`, `addr add 198.18.${i + 1}.1/24 dev v${i + 1}`, `link set v${i + 1} up`);
    }
    await ipBatch(this.router, routerLines);
    await Promise.all(
      this.hosts.map((host, i) => ipBatch(this.namespace(host), ['link set lo up', `addr add ${this.address(host)}/24 dev eth0`, 'link set eth0 up', `route add default via 198.18.${i + 1}.1`])),
    );
    await run(IP, ['netns', 'exec', this.router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  }

  /** Starts `command` inside `host`'s namespace. */
  spawn(host: string, command: string, args: readonly string[], options: { stdin?: boolean; env?: NodeJS.ProcessEnv } = {}): LabProcess {
    return this.spawnIn(this.namespace(host), `${host}: ${command.split('/').pop()}`, command, args, options);
  }

  private spawnIn(ns: string, name: string, command: string, args: readonly string[], options: { stdin?: boolean; env?: NodeJS.ProcessEnv; ipc?: boolean }): LabProcess {
    if (this.closed) throw new Error('lab: closed');
    // `ip netns exec` enters the namespace and execs the command: the PID is the command's.
    const stdio = [options.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(options.ipc === true ? ['ipc' as const] : [])] as const;
    const child = spawn(IP, ['netns', 'exec', ns, command, ...args], { stdio: [...stdio], env: options.env ?? process.env });
    const proc = new LabProcess(child, name);
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
    return proc;
  }

  /**
   * A loopback port of the test process that relays to `to`:`port`, connecting from `from`'s
   * namespace (through the router, with its cuts and impairments, unless `from` is `to`).
   */
  async expose(from: string, to: string, port: number): Promise<number> {
    let forwarder = this.forwarders.get(from);
    if (forwarder === undefined || !forwarder.running) {
      forwarder = this.spawnIn(this.namespace(from), `${from}: forwarder`, process.execPath, ['--import', 'tsx', FORWARDER], { ipc: true });
      this.forwarders.set(from, forwarder);
    }
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port: local } = server.address() as AddressInfo;
    const child = forwarder.child;
    const ack = new Promise<void>((resolve, reject) => {
      const onMessage = (message: unknown): void => {
        if (typeof message === 'object' && message !== null && (message as { listening?: number }).listening === local) {
          child.off('message', onMessage);
          child.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (): void => reject(new Error(`${forwarder.name} exited:\n${forwarder.output()}`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    // The listening socket moves to the forwarder (it stays in the host's loopback; its outgoing
    // connections are made in the forwarder's namespace); this process keeps no copy.
    child.send({ host: this.address(to), port, local }, server);
    await ack;
    server.close();
    // The IPC channel must not keep the test process alive.
    child.channel?.unref();
    return local;
  }

  /** Cuts every packet between `a` and `b`, both ways (silently: no RST, no ICMP). */
  async cut(a: string, b: string): Promise<void> {
    const key = pairKey(a, b);
    if (this.cuts.has(key)) return;
    this.cuts.add(key);
    await this.iptables(['-I', 'FORWARD', '1', '-s', this.address(a), '-d', this.address(b), '-j', 'DROP']);
    await this.iptables(['-I', 'FORWARD', '1', '-s', this.address(b), '-d', this.address(a), '-j', 'DROP']);
  }

  /** Ends the cut between `a` and `b`. */
  async heal(a: string, b: string): Promise<void> {
    const key = pairKey(a, b);
    if (!this.cuts.delete(key)) return;
    await this.iptables(['-D', 'FORWARD', '-s', this.address(a), '-d', this.address(b), '-j', 'DROP']);
    await this.iptables(['-D', 'FORWARD', '-s', this.address(b), '-d', this.address(a), '-j', 'DROP']);
  }

  /** Cuts `host` from every other host in `others` (default: all). */
  async isolate(host: string, others: readonly string[] = this.hosts.filter((h) => h !== host)): Promise<void> {
    for (const other of others) await this.cut(host, other);
  }

  /** Ends every cut. */
  async healAll(): Promise<void> {
    for (const key of [...this.cuts]) {
      const [a, b] = key.split('|') as [string, string];
      await this.heal(a, b);
    }
  }

  /** Sends the traffic between `a` and `b` (both ways) through a new nfq-impair with `settings`. */
  async impair(a: string, b: string, settings: ImpairSettings, seed = 1): Promise<Impairment> {
    const binary = await this.impairProgram();
    const queue = this.nextQueue++;
    const proc = this.spawnIn(this.router, `nfq-impair ${a}-${b}`, binary, [String(queue), ...settingsWords(settings), `seed=${seed}`], { stdin: true });
    await proc.waitFor(/ready queue=\d+/, 5000);
    const rules = [
      ['-s', this.address(a), '-d', this.address(b)],
      ['-s', this.address(b), '-d', this.address(a)],
    ];
    // Appended: a cut (inserted first) still wins over an impairment.
    for (const rule of rules) await this.iptables(['-A', 'FORWARD', ...rule, '-j', 'NFQUEUE', '--queue-num', String(queue)]);
    let removed: ImpairStats | undefined;
    const stats = async (): Promise<ImpairStats> => {
      const from = proc.output().length;
      proc.child.stdin?.write('stats\n');
      return parseStats((await proc.waitFor(/stats [^\n]*\n/, 5000, from))[0]);
    };
    return {
      set: (next) => proc.child.stdin?.write(`${settingsWords(next).join(' ')}\n`),
      stats: () => (removed !== undefined ? Promise.resolve(removed) : stats()),
      remove: async () => {
        if (removed !== undefined) return removed;
        for (const rule of rules) await this.iptables(['-D', 'FORWARD', ...rule, '-j', 'NFQUEUE', '--queue-num', String(queue)]);
        const from = proc.output().length;
        await proc.kill('SIGTERM');
        const final = proc.output().slice(from).match(/stats [^\n]*\n/);
        if (final === null) throw new Error(`nfq-impair printed no final counters:\n${proc.output()}`);
        const stats = parseStats(final[0]);
        removed = stats;
        return stats;
      },
    };
  }

  /** Compiles nfq-impair once per lab (cc + libnetfilter-queue-dev; .ci/run installs them). */
  private async impairProgram(): Promise<string> {
    if (this.impairBinary !== undefined) return this.impairBinary;
    const cc = ['/usr/bin/cc', '/usr/bin/gcc'].find((p) => existsSync(p));
    if (cc === undefined) throw new Error('fault tests need a C compiler to build nfq-impair: apt-get install -y gcc libc6-dev (.ci/run does)');
    if (!existsSync('/usr/include/libnetfilter_queue/libnetfilter_queue.h')) {
      throw new Error('fault tests need libnetfilter_queue to build nfq-impair: apt-get install -y libnetfilter-queue-dev (.ci/run does)');
    }
    const out = join(tempDir('starling-nfq-'), 'nfq-impair');
    try {
      await run(cc, ['-O2', '-Wall', '-o', out, IMPAIR_SOURCE, '-lnetfilter_queue']);
    } catch (error) {
      throw new Error(`building nfq-impair failed: ${lastLine(error)}`, { cause: error });
    }
    this.impairBinary = out;
    return out;
  }

  private async iptables(args: readonly string[]): Promise<void> {
    try {
      // -w: iptables takes one lock for the whole machine; concurrent runs wait their turn.
      await run(IP, ['netns', 'exec', this.router, IPTABLES ?? 'iptables', '-w', '5', ...args]);
    } catch (error) {
      throw new Error(`iptables ${args.join(' ')} (in ${this.router}) failed: ${lastLine(error)}`, { cause: error });
    }
  }

  /** Stops every process of the lab (by PID) and deletes its namespaces (with their veths and rules). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.processes].map((p) => p.kill('SIGKILL')));
    for (const ns of this.namespaces()) await run(IP, ['netns', 'del', ns]).catch(() => undefined);
    labs.delete(this);
  }

  /** `close()` for the process's exit hook: synchronous, best effort. */
  closeSync(): void {
    for (const p of this.processes) p.killSync();
    for (const ns of this.namespaces()) {
      try {
        execFileSync(IP, ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    }
    this.closed = true;
  }

  private namespaces(): string[] {
    return [this.router, ...this.hosts.map((h) => `${this.id}-${h}`)];
  }
}

/** Fails with one line naming what this machine lacks. */
function preflight(): void {
  if (process.platform !== 'linux') throw new Error(`fault tests need Linux network namespaces; this is ${process.platform}`);
  if (process.getuid?.() !== 0) throw new Error('fault tests need root (network namespaces, veth pairs, iptables); run them as root, as CI does');
  if (!existsSync(IP)) throw new Error('fault tests need iproute2 (ip netns): apt-get install -y iproute2 (.ci/run does)');
  if (IPTABLES === undefined) throw new Error('fault tests need iptables: apt-get install -y iptables (.ci/run does)');
}

/** Deletes namespaces left by earlier runs whose test process is gone (only this module's names). */
async function sweepStale(): Promise<void> {
  let list: string;
  try {
    list = (await run(IP, ['netns', 'list'])).stdout;
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = new RegExp(`^${NAME_PREFIX}(\\d+)-`).exec(name);
    if (match === null || existsSync(`/proc/${match[1]}`)) continue;
    try {
      const pids = (await run(IP, ['netns', 'pids', name])).stdout.split('\n').filter((p) => /^\d+$/.test(p));
      for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Nothing left inside.
    }
    await run(IP, ['netns', 'del', name]).catch(() => undefined);
  }
}

function ipBatch(ns: string, lines: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(IP, ['-n', ns, '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ip -n ${ns} -batch failed (${code}): ${stderr.trim()}`))));
    child.stdin.end(`${lines.join('\n')}\n`);
  });
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

function settingsWords(settings: ImpairSettings): string[] {
  const words: string[] = [];
  if (settings.delay !== undefined) words.push(`delay=${settings.delay}`);
  if (settings.jitter !== undefined) words.push(`jitter=${settings.jitter}`);
  if (settings.loss !== undefined) words.push(`loss=${settings.loss}`);
  if (settings.reorder !== undefined) words.push(`reorder=${settings.reorder}`);
  if (settings.reorderMs !== undefined) words.push(`reorder_ms=${settings.reorderMs}`);
  return words;
}

function parseStats(line: string): ImpairStats {
  const value = (key: string): number => Number(new RegExp(`${key}=(\\d+)`).exec(line)?.[1] ?? NaN);
  return { seen: value('seen'), dropped: value('dropped'), delayed: value('delayed'), reordered: value('reordered') };
}

function lastLine(error: unknown): string {
  const stderr = (error as { stderr?: string }).stderr;
  const text = typeof stderr === 'string' && stderr.trim() !== '' ? stderr : error instanceof Error ? error.message : String(error);
  return text.trim().split('\n').pop() ?? text;
}
