/**
 * SCRAM-SHA-512 (RFC 5802 with SHA-512, as RFC 7677 does for SHA-256), server side, for MQTT 5
 * enhanced authentication. The Mosquitto `$7$` password hash is PBKDF2-SHA512(password, salt,
 * iterations) with a 64-byte output: exactly SCRAM-SHA-512's SaltedPassword, so users of an
 * existing password file can use SCRAM without the server ever seeing their password.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The MQTT Authentication Method name. */
export const SCRAM_SHA_512 = 'SCRAM-SHA-512';

/** What the server knows of a user: the salted password and how it was made. */
export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  saltedPassword: Buffer;
}

/** The state between the two steps of one exchange. */
export interface ScramServerState {
  username: string;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  credentials: ScramCredentials | undefined;
}

/** A SCRAM message that cannot be parsed or breaks the mechanism's rules. */
export class ScramError extends Error {
  readonly code = 'ERR_SCRAM';
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha512', key).update(data).digest();
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ScramError(`malformed attribute "${part.slice(0, 20)}"`);
    out.set(part[0] as string, part.slice(2));
  }
  return out;
}

/** RFC 5802 saslname: "=2C" is ",", "=3D" is "="; any other "=" is an error. */
function decodeSaslName(name: string): string {
  if (/=(?!2C|3D)/.test(name)) throw new ScramError('malformed user name');
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/**
 * Step 1: reads client-first-message ("n,,n=user,r=nonce"), returns the server-first-message and
 * the state for step 2. `lookup` gives the user's credentials; an unknown user gets made-up ones,
 * so the answer does not tell which users exist.
 */
export function scramServerFirst(clientFirst: string, lookup: (username: string) => ScramCredentials | undefined): { serverFirst: string; state: ScramServerState } {
  // gs2-header: no channel binding ("n") or "y" (client supports it, thinks we do not); "p=" is refused.
  const match = /^([ny]),(?:a=[^,]*)?,(.*)$/.exec(clientFirst);
  if (match === null) throw new ScramError('client-first-message must start with "n,," (channel binding is not supported)');
  const clientFirstBare = match[2] as string;
  const attrs = attributes(clientFirstBare);
  const name = attrs.get('n');
  const clientNonce = attrs.get('r');
  if (name === undefined || clientNonce === undefined || clientNonce.length === 0) throw new ScramError('client-first-message needs n= and r=');
  const username = decodeSaslName(name);
  const credentials = lookup(username);
  const salt = credentials?.salt ?? createHash('sha512').update(`starling-unknown-user:${username}`).digest().subarray(0, 12);
  const iterations = credentials?.iterations ?? 20_000;
  const nonce = clientNonce + randomBytes(18).toString('base64');
  const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
  return { serverFirst, state: { username, clientFirstBare, serverFirst, nonce, credentials } };
}

/**
 * Step 2: checks client-final-message ("c=biws,r=nonce,p=proof"); returns the server-final-message
 * ("v=signature") when the proof is right, undefined when it is not.
 */
export function scramServerFinal(clientFinal: string, state: ScramServerState): string | undefined {
  const proofAt = clientFinal.lastIndexOf(',p=');
  if (proofAt < 0) throw new ScramError('client-final-message needs p=');
  const withoutProof = clientFinal.slice(0, proofAt);
  const attrs = attributes(withoutProof);
  if (attrs.get('r') !== state.nonce) throw new ScramError('nonce mismatch');
  const binding = attrs.get('c');
  if (binding !== Buffer.from('n,,').toString('base64') && binding !== Buffer.from('y,,').toString('base64')) throw new ScramError('unsupported channel binding');
  const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
  const credentials = state.credentials;
  if (credentials === undefined || proof.length !== 64) return undefined;
  const authMessage = `${state.clientFirstBare},${state.serverFirst},${withoutProof}`;
  const clientKey = hmac(credentials.saltedPassword, 'Client Key');
  const storedKey = createHash('sha512').update(clientKey).digest();
  const clientSignature = hmac(storedKey, authMessage);
  const recovered = Buffer.alloc(64);
  for (let i = 0; i < 64; i++) recovered[i] = (proof[i] as number) ^ (clientSignature[i] as number);
  if (!timingSafeEqual(createHash('sha512').update(recovered).digest(), storedKey)) return undefined;
  const serverSignature = hmac(hmac(credentials.saltedPassword, 'Server Key'), authMessage);
  return `v=${serverSignature.toString('base64')}`;
}
