/**
 * The security part of the configuration: the TLS listener and authentication / authorization
 * (docs/security.md). Kept beside config.ts, which calls into it for the `tls` and `auth` keys and
 * the matching flags.
 */
import { asBoolean, asInteger, asObject, asPort, asString, ConfigError } from './values.js';

/** TLS versions a listener can be limited to. */
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** The TLS listener (mqtts); present when a certificate and key are configured. */
export interface TlsConfig {
  /** Port (default 8883; 0 picks a free one). */
  port?: number;
  /** Interfaces (default: the same as the plain MQTT listener). */
  hosts?: string[];
  certFile?: string;
  keyFile?: string;
  /** CA bundle client certificates must chain to. */
  caFile?: string;
  /** Refuse clients without a certificate signed by `caFile` (mutual TLS). */
  requireClientCert?: boolean;
  /** Subject field of the client certificate used as the user name (e.g. "CN"). */
  usernameField?: string;
  minVersion?: (typeof TLS_VERSIONS)[number];
  /** OpenSSL cipher list (TLS 1.2). */
  ciphers?: string;
}

/** JWT authentication (the password is a token). */
export interface JwtConfig {
  keyFile?: string;
  jwksFile?: string;
  issuer?: string;
  audience?: string;
  algorithms?: string[];
  usernameClaim?: string;
  publishClaim?: string;
  subscribeClaim?: string;
  clockToleranceSeconds?: number;
}

/** Authentication and authorization. */
export interface AuthConfig {
  /** Mosquitto-format password file. */
  passwordFile?: string;
  /** Mosquitto-format ACL file. */
  aclFile?: string;
  /** Let in clients no authentication accepted; unset: only when no authentication is configured. */
  allowAnonymous?: boolean;
  jwt?: JwtConfig;
  /** Delay of refusals after failed logins, per client address. */
  loginBackoff?: { baseDelayMs?: number; maxDelayMs?: number };
}

/** The parts of StarlingConfig this module fills. */
export interface SecurityConfigTarget {
  tls?: TlsConfig;
  auth?: AuthConfig;
}

/** parseArgs options for the security flags. */
export const SECURITY_FLAGS = {
  'tls-port': { type: 'string' },
  'tls-host': { type: 'string', multiple: true },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'require-client-cert': { type: 'boolean' },
  'tls-username-field': { type: 'string' },
  'tls-min-version': { type: 'string' },
  'tls-ciphers': { type: 'string' },
  'password-file': { type: 'string' },
  'acl-file': { type: 'string' },
  'allow-anonymous': { type: 'boolean' },
  'jwt-key': { type: 'string' },
  'jwt-jwks': { type: 'string' },
  'jwt-issuer': { type: 'string' },
  'jwt-audience': { type: 'string' },
} as const;

/** Help text for the security flags. */
export const SECURITY_USAGE = `
Security (docs/security.md):
  --tls-port PORT             MQTT over TLS port (default 8883 when a certificate is given)
  --tls-host HOST             interface of the TLS listener (repeatable; default: as --host)
  --tls-cert FILE             server certificate chain (PEM)
  --tls-key FILE              server private key (PEM)
  --tls-ca FILE               CA certificates that client certificates must chain to
  --require-client-cert       refuse TLS clients without a certificate signed by --tls-ca
  --tls-username-field FIELD  use this client-certificate subject field (e.g. CN) as the user name
  --tls-min-version VERSION   TLSv1.2 (default) or TLSv1.3
  --tls-ciphers LIST          OpenSSL cipher list for TLS 1.2
  --password-file FILE        Mosquitto-format password file (see: starling passwd)
  --acl-file FILE             Mosquitto-format ACL file
  --allow-anonymous           let in clients without credentials (needed to listen beyond
                              loopback without authentication)
  --jwt-key FILE              authenticate JWT passwords with this public key (PEM or JWK)
  --jwt-jwks FILE             ... or with this JWKS file
  --jwt-issuer ISS            required JWT issuer
  --jwt-audience AUD          required JWT audience
`;

/** Flag values as parseArgs returns them. */
export type SecurityFlagValues = { [K in keyof typeof SECURITY_FLAGS]?: (typeof SECURITY_FLAGS)[K] extends { multiple: true } ? string[] : (typeof SECURITY_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** Applies the security flags over `config` (file values already in place). */
export function applySecurityFlags(config: SecurityConfigTarget, values: SecurityFlagValues): void {
  const tls: TlsConfig = { ...config.tls };
  if (values['tls-port'] !== undefined) tls.port = asPort(values['tls-port'], '--tls-port');
  if (values['tls-host'] !== undefined) tls.hosts = values['tls-host'];
  if (values['tls-cert'] !== undefined) tls.certFile = values['tls-cert'];
  if (values['tls-key'] !== undefined) tls.keyFile = values['tls-key'];
  if (values['tls-ca'] !== undefined) tls.caFile = values['tls-ca'];
  if (values['require-client-cert'] === true) tls.requireClientCert = true;
  if (values['tls-username-field'] !== undefined) tls.usernameField = values['tls-username-field'];
  if (values['tls-min-version'] !== undefined) tls.minVersion = asTlsVersion(values['tls-min-version'], '--tls-min-version');
  if (values['tls-ciphers'] !== undefined) tls.ciphers = values['tls-ciphers'];
  if (Object.keys(tls).length > 0) config.tls = tls;

  const auth: AuthConfig = { ...config.auth };
  if (values['password-file'] !== undefined) auth.passwordFile = values['password-file'];
  if (values['acl-file'] !== undefined) auth.aclFile = values['acl-file'];
  if (values['allow-anonymous'] === true) auth.allowAnonymous = true;
  const jwt: JwtConfig = { ...auth.jwt };
  if (values['jwt-key'] !== undefined) jwt.keyFile = values['jwt-key'];
  if (values['jwt-jwks'] !== undefined) jwt.jwksFile = values['jwt-jwks'];
  if (values['jwt-issuer'] !== undefined) jwt.issuer = values['jwt-issuer'];
  if (values['jwt-audience'] !== undefined) jwt.audience = values['jwt-audience'];
  if (Object.keys(jwt).length > 0) auth.jwt = jwt;
  if (Object.keys(auth).length > 0) config.auth = auth;
  checkSecurity(config, 'command line');
}

/** Applies a `tls` object from a config file. */
export function applyTlsObject(config: SecurityConfigTarget, data: unknown, source: string): void {
  const tls: TlsConfig = { ...config.tls };
  for (const [key, value] of Object.entries(asObject(data, `${source}: tls`))) {
    const where = `${source}: tls.${key}`;
    switch (key) {
      case 'port':
        tls.port = asPort(value, where);
        break;
      case 'hosts':
        if (!Array.isArray(value)) throw new ConfigError(`${where} must be an array of strings`);
        tls.hosts = value.map((h, i) => asString(h, `${where}[${i}]`));
        break;
      case 'certFile':
      case 'keyFile':
      case 'caFile':
      case 'usernameField':
      case 'ciphers':
        tls[key] = asString(value, where);
        break;
      case 'requireClientCert':
        tls.requireClientCert = asBoolean(value, where);
        break;
      case 'minVersion':
        tls.minVersion = asTlsVersion(value, where);
        break;
      default:
        throw new ConfigError(`${source}: unknown key "tls.${key}" (known: port, hosts, certFile, keyFile, caFile, requireClientCert, usernameField, minVersion, ciphers)`);
    }
  }
  config.tls = tls;
}

/** Applies an `auth` object from a config file. */
export function applyAuthObject(config: SecurityConfigTarget, data: unknown, source: string): void {
  const auth: AuthConfig = { ...config.auth };
  for (const [key, value] of Object.entries(asObject(data, `${source}: auth`))) {
    const where = `${source}: auth.${key}`;
    switch (key) {
      case 'passwordFile':
      case 'aclFile':
        auth[key] = asString(value, where);
        break;
      case 'allowAnonymous':
        auth.allowAnonymous = asBoolean(value, where);
        break;
      case 'jwt':
        auth.jwt = jwtObject(value, where);
        break;
      case 'loginBackoff': {
        const backoff: NonNullable<AuthConfig['loginBackoff']> = {};
        for (const [k, v] of Object.entries(asObject(value, where))) {
          if (k !== 'baseDelayMs' && k !== 'maxDelayMs') throw new ConfigError(`${source}: unknown key "auth.loginBackoff.${k}"`);
          backoff[k] = asInteger(v, `${where}.${k}`, 0, 60_000);
        }
        auth.loginBackoff = backoff;
        break;
      }
      default:
        throw new ConfigError(`${source}: unknown key "auth.${key}" (known: passwordFile, aclFile, allowAnonymous, jwt, loginBackoff)`);
    }
  }
  config.auth = auth;
}

function jwtObject(data: unknown, where: string): JwtConfig {
  const jwt: JwtConfig = {};
  for (const [key, value] of Object.entries(asObject(data, where))) {
    const at = `${where}.${key}`;
    switch (key) {
      case 'keyFile':
      case 'jwksFile':
      case 'issuer':
      case 'audience':
      case 'usernameClaim':
      case 'publishClaim':
      case 'subscribeClaim':
        jwt[key] = asString(value, at);
        break;
      case 'algorithms':
        if (!Array.isArray(value) || value.length === 0) throw new ConfigError(`${at} must be a non-empty array of strings`);
        jwt.algorithms = value.map((a, i) => asString(a, `${at}[${i}]`));
        break;
      case 'clockToleranceSeconds':
        jwt.clockToleranceSeconds = asInteger(value, at, 0, 3600);
        break;
      default:
        throw new ConfigError(`${where}: unknown key "${key}"`);
    }
  }
  return jwt;
}

/** Checks that the security settings fit together (a certificate with its key, and so on). */
export function checkSecurity(config: SecurityConfigTarget, source: string): void {
  const tls = config.tls;
  if (tls !== undefined) {
    if (tls.certFile === undefined || tls.keyFile === undefined) {
      throw new ConfigError(`${source}: TLS needs both a certificate and a key (--tls-cert and --tls-key, or tls.certFile and tls.keyFile)`);
    }
    if (tls.requireClientCert === true && tls.caFile === undefined) {
      throw new ConfigError(`${source}: requiring client certificates needs the CA that signs them (--tls-ca or tls.caFile)`);
    }
    if (tls.usernameField !== undefined && tls.requireClientCert !== true) {
      throw new ConfigError(`${source}: a certificate user name field needs --require-client-cert (tls.requireClientCert)`);
    }
  }
  const jwt = config.auth?.jwt;
  if (jwt !== undefined && (jwt.keyFile === undefined) === (jwt.jwksFile === undefined)) {
    throw new ConfigError(`${source}: JWT authentication needs exactly one of a key file (--jwt-key) and a JWKS file (--jwt-jwks)`);
  }
}






function asTlsVersion(value: unknown, where: string): (typeof TLS_VERSIONS)[number] {
  if (typeof value !== 'string' || !(TLS_VERSIONS as readonly string[]).includes(value)) {
    throw new ConfigError(`${where} must be one of ${TLS_VERSIONS.join(', ')}`);
  }
  return value as (typeof TLS_VERSIONS)[number];
}
