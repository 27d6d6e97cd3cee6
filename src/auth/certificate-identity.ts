/** A TLS client certificate as the client's identity (use_identity_as_username): its subject names the user. */
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin } from '../broker/hooks.js';

/** Options of CertificateIdentity. */
export interface CertificateIdentityOptions {
  /**
   * Subject field used as the user name (e.g. "CN"); unset: the certificate authenticates the
   * client and the CONNECT user name, if any, is kept (and checked by the other plugins).
   */
  usernameField?: string;
}

/**
 * Accepts clients that presented a verified TLS client certificate (the listener sets
 * `certificateSubject` only then); abstains for every other client.
 */
export class CertificateIdentity implements BrokerPlugin {
  readonly name = 'certificate-identity';

  constructor(private readonly options: CertificateIdentityOptions = {}) {}

  /** Whether this plugin decides the user name of certificate clients (then password checks are skipped for them). */
  get replacesUsername(): boolean {
    return this.options.usernameField !== undefined;
  }

  authenticate(request: AuthenticateRequest): AuthenticateResult {
    const subject = request.certificateSubject;
    if (subject === undefined) return undefined;
    const field = this.options.usernameField;
    if (field === undefined) return 'accept';
    const username = subject[field];
    // A certificate without the chosen field has no identity to give: refuse rather than guess.
    if (username === undefined || username.length === 0) return 'not-authorized';
    return { accept: true, username };
  }
}
