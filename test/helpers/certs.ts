/**
 * Throwaway certificates for TLS tests, made at test time with openssl in a temporary directory:
 * a CA, a server certificate for 127.0.0.1 / localhost, client certificates signed by the CA, and
 * a client certificate from a second ("rogue") CA the server does not trust. EC P-256 keys keep it fast.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, as files and contents. */
export interface CertPair {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** Everything a TLS test needs; `cleanup()` removes the directory. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  ca: Buffer;
  server: CertPair;
  /** Signed by the CA, subject CN=<name>, O=Starling Test. */
  client(name: string): CertPair;
  /** Signed by another CA, subject CN=<name>. */
  rogueClient(name: string): CertPair;
  /** A new server certificate (another serial number) from the same CA, for reload tests. */
  newServer(name: string): CertPair;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { stdio: 'ignore', cwd });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): { crt: string; key: string } {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(['req', '-x509', ...EC, '-keyout', key, '-out', crt, '-days', '1', '-subj', `/CN=${name}`], dir);
  return { crt, key };
}

function sign(dir: string, ca: { crt: string; key: string }, name: string, subject: string, ext: string): CertPair {
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `${ext}\n`);
  openssl(['req', ...EC, '-keyout', keyFile, '-out', csr, '-subj', subject], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-out', certFile, '-days', '1', '-extfile', extFile], dir);
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/** Makes the certificates (a few hundred milliseconds). */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'starling-certs-'));
  const ca = makeCa(dir, 'ca');
  const rogue = makeCa(dir, 'rogue-ca');
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';
  const clientExt = 'extendedKeyUsage=clientAuth';
  return {
    dir,
    caFile: ca.crt,
    ca: readFileSync(ca.crt),
    server: sign(dir, ca, 'server', '/CN=localhost', serverExt),
    client: (name) => sign(dir, ca, `client-${name}`, `/O=Starling Test/CN=${name}`, clientExt),
    rogueClient: (name) => sign(dir, rogue, `rogue-${name}`, `/CN=${name}`, clientExt),
    newServer: (name) => sign(dir, ca, name, '/CN=localhost', serverExt),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
