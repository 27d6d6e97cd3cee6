/**
 * JWT authentication: the CONNECT password is a signed token (JWS compact form), verified with
 * `jose` against a public key (PEM, certificate or JWK) or a JWKS file. Claims become the client's
 * user name and, optionally, its publish / subscribe rights.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, decodeProtectedHeader, importJWK, jwtVerify, type JSONWebKeySet, type JWK, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin, ClientIdentity } from '../broker/hooks.js';
import { filterCovers, filterMatches } from './acl.js';
import type { LoginBackoff } from './login-backoff.js';

/** Options of JwtAuth. One of `keyFile` and `jwksFile` is required. */
export interface JwtAuthOptions {
  /** A public key: PEM (`PUBLIC KEY` or `CERTIFICATE`) or a JWK (JSON); a JSON `{"keys": […]}` works as a JWKS. */
  keyFile?: string;
  /** A JWKS file (`{"keys": […]}`): the token's `kid` picks the key. */
  jwksFile?: string;
  /** Required `iss` (one of). */
  issuer?: string | string[];
  /** Required `aud` (one of). */
  audience?: string | string[];
  /** Accepted `alg` values; unset: any the key type allows (never `none`). */
  algorithms?: string[];
  /** Claim that becomes the user name (default `sub`); a token without it is refused. */
  usernameClaim?: string;
  /** Claim listing the topic filters the client may publish to (default `publish`); absent: no opinion. */
  publishClaim?: string;
  /** Claim listing the topic filters the client may subscribe to and receive from (default `subscribe`). */
  subscribeClaim?: string;
  /** Seconds of clock skew tolerated on `exp` / `nbf` (default 0). */
  clockToleranceSeconds?: number;
  /** Whether a token must carry `exp` (default true). */
  requireExpiry?: boolean;
  /** Delays refusals per client address. */
  backoff?: LoginBackoff;
}

/** A key file that cannot be used. */
export class JwtKeyError extends Error {
  readonly code = 'ERR_JWT_KEY';
}

/** What a verified token allows, attached to the client as `attributes.jwt`. */
export class JwtGrant {
  constructor(
    /** Publish filters split in levels; undefined when the token says nothing. */
    readonly publish: readonly string[][] | undefined,
    /** Subscribe / receive filters split in levels; undefined when the token says nothing. */
    readonly subscribe: readonly string[][] | undefined,
    /** `exp` in milliseconds since the epoch. */
    readonly expiresAt: number | undefined,
  ) {}

  /** True once the token has expired: the client keeps its connection but may no longer publish, subscribe or receive. */
  expired(now = Date.now()): boolean {
    return this.expiresAt !== undefined && now >= this.expiresAt;
  }
}

type VerifyKey = KeyObject | Awaited<ReturnType<typeof importJWK>> | JWTVerifyGetKey;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Authenticates with a JWT in the password field and enforces its publish / subscribe claims. */
export class JwtAuth implements BrokerPlugin {
  readonly name = 'jwt';
  private readonly verifyOptions: JWTVerifyOptions;

  private constructor(
    private readonly options: JwtAuthOptions,
    private key: VerifyKey,
  ) {
    const verify: JWTVerifyOptions = {};
    if (options.issuer !== undefined) verify.issuer = options.issuer;
    if (options.audience !== undefined) verify.audience = options.audience;
    if (options.algorithms !== undefined) verify.algorithms = options.algorithms;
    if (options.clockToleranceSeconds !== undefined) verify.clockTolerance = options.clockToleranceSeconds;
    if (options.requireExpiry ?? true) verify.requiredClaims = ['exp'];
    this.verifyOptions = verify;
  }

  /** Reads the key or JWKS file and returns the plugin. */
  static async load(options: JwtAuthOptions): Promise<JwtAuth> {
    return new JwtAuth(options, await loadKey(options));
  }

  /** Re-reads the key files (SIGHUP); on error the old key stays and the error is thrown. */
  async reload(): Promise<void> {
    this.key = await loadKey(this.options);
  }

  authenticate(request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult> {
    const password = request.password;
    if (password === undefined) return undefined;
    const token = password.toString('utf8');
    if (!COMPACT_JWS.test(token)) return undefined;
    try {
      decodeProtectedHeader(token);
    } catch {
      return undefined; // three dot-separated parts, but not a JWT: a password for another plugin
    }
    return this.verify(request, token);
  }

  private async verify(request: AuthenticateRequest, token: string): Promise<AuthenticateResult> {
    const backoff = this.options.backoff;
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, this.key, this.verifyOptions)).payload;
    } catch {
      return backoff === undefined ? 'bad-credentials' : backoff.refuse(request.remoteAddress, 'bad-credentials');
    }
    const username = payload[this.options.usernameClaim ?? 'sub'];
    if (typeof username !== 'string' || username.length === 0) return 'not-authorized';
    const grant = new JwtGrant(
      filterList(payload[this.options.publishClaim ?? 'publish']),
      filterList(payload[this.options.subscribeClaim ?? 'subscribe']),
      typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
    );
    backoff?.succeeded(request.remoteAddress);
    return { accept: true, username, attributes: { jwt: grant, jwtClaims: payload } };
  }

  authorizePublish(client: ClientIdentity, topic: string): boolean | undefined {
    const grant = grantOf(client);
    if (grant === undefined) return undefined;
    if (grant.expired()) return false;
    if (grant.publish === undefined) return undefined;
    const levels = topic.split('/');
    return grant.publish.some((filter) => filterMatches(filter, levels));
  }

  authorizeSubscribe(client: ClientIdentity, topicFilter: string): boolean | undefined {
    const grant = grantOf(client);
    if (grant === undefined) return undefined;
    if (grant.expired()) return false;
    if (grant.subscribe === undefined) return undefined;
    const levels = stripShare(topicFilter).split('/');
    return grant.subscribe.some((filter) => filterCovers(filter, levels));
  }

  authorizeReceive(client: ClientIdentity, topic: string): boolean | undefined {
    const grant = grantOf(client);
    if (grant === undefined) return undefined;
    if (grant.expired()) return false;
    if (grant.subscribe === undefined) return undefined;
    const levels = topic.split('/');
    return grant.subscribe.some((filter) => filterMatches(filter, levels));
  }
}

function grantOf(client: ClientIdentity): JwtGrant | undefined {
  const grant = client.attributes?.['jwt'];
  return grant instanceof JwtGrant ? grant : undefined;
}

function stripShare(topicFilter: string): string {
  if (!topicFilter.startsWith('$share/')) return topicFilter;
  const slash = topicFilter.indexOf('/', 7);
  return slash < 0 ? topicFilter : topicFilter.slice(slash + 1);
}

/** A claim holding filters: an array of strings, or one string of space-separated filters. */
function filterList(claim: unknown): string[][] | undefined {
  if (claim === undefined) return undefined;
  const list = typeof claim === 'string' ? claim.split(/\s+/).filter((f) => f.length > 0) : Array.isArray(claim) ? claim : [];
  // Anything that is not a string grants nothing (an empty list denies everything).
  return list.filter((f): f is string => typeof f === 'string' && f.length > 0).map((f) => f.split('/'));
}

async function loadKey(options: JwtAuthOptions): Promise<VerifyKey> {
  const path = options.jwksFile ?? options.keyFile;
  if (path === undefined) throw new JwtKeyError('JWT authentication needs a key file or a JWKS file');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new JwtKeyError(`cannot read JWT key file ${path}: ${(error as Error).message}`);
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (error) {
      throw new JwtKeyError(`JWT key file ${path} is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof json !== 'object' || json === null) throw new JwtKeyError(`JWT key file ${path} must hold a JWK or a JWKS`);
    if ('keys' in json) {
      if (!Array.isArray(json.keys)) throw new JwtKeyError(`JWKS file ${path}: "keys" must be an array`);
      return createLocalJWKSet(json as JSONWebKeySet);
    }
    if (options.jwksFile !== undefined) throw new JwtKeyError(`JWKS file ${path} has no "keys" array`);
    const jwk = json as JWK;
    if (jwk.d !== undefined) throw new JwtKeyError(`JWT key file ${path} holds a private key: give the broker only the public key`);
    try {
      return await importJWK(jwk, jwk.alg ?? options.algorithms?.[0]);
    } catch (error) {
      throw new JwtKeyError(`JWT key file ${path}: ${(error as Error).message}`);
    }
  }
  if (options.jwksFile !== undefined) throw new JwtKeyError(`JWKS file ${path} must be JSON`);
  if (trimmed.includes('PRIVATE KEY')) throw new JwtKeyError(`JWT key file ${path} holds a private key: give the broker only the public key`);
  try {
    return createPublicKey(trimmed);
  } catch (error) {
    throw new JwtKeyError(`JWT key file ${path} is not a PEM public key or certificate: ${(error as Error).message}`);
  }
}
