/** The error of an access-control request that cannot be done (bad input, unknown name, conflict…), with a stable kind the HTTP API maps to a status. */

/** What went wrong: the HTTP API answers 400, 404, 409, 401, 403 or 503. */
export type AccessErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unauthorized' | 'forbidden' | 'unavailable';

/** A refused access-control request; its message says why in words a person can act on. */
export class AccessError extends Error {
  readonly code = 'ERR_ACCESS';

  constructor(
    readonly kind: AccessErrorKind,
    message: string,
  ) {
    super(message);
  }
}
