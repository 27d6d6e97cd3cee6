/** Exit codes of `starling pub` and `starling sub` (documented in docs/cli.md), and the error → code table. */
import {
  ConnectionError,
  ConnectionRefusedError,
  InvalidArgumentError,
  KeepAliveTimeoutError,
  RequestRejectedError,
  ServerDisconnectError,
  TimeoutError,
} from '../client/index.js';

/** What a script can rely on. */
export const ExitCode = {
  ok: 0,
  /** Bad flags or arguments, or any error not listed below. */
  usage: 1,
  /** The server refused the connection (CONNACK code ≠ 0); the message names the code in words. */
  refused: 2,
  /** No CONNACK, ack or (sub -W) enough messages in time. */
  timeout: 3,
  /** The network connection failed or was lost (TCP, TLS, WebSocket, keep-alive). */
  network: 4,
  /** The server rejected a publish or subscription, or sent DISCONNECT. */
  rejected: 5,
} as const;

/** A command-line mistake: exit code 1 with the usage hint. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

/** The exit code for an error thrown by a command. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof ConnectionRefusedError) return ExitCode.refused;
  if (error instanceof TimeoutError) return ExitCode.timeout;
  if (error instanceof ConnectionError || error instanceof KeepAliveTimeoutError) return ExitCode.network;
  if (error instanceof RequestRejectedError || error instanceof ServerDisconnectError) return ExitCode.rejected;
  if (error instanceof UsageError || error instanceof InvalidArgumentError) return ExitCode.usage;
  return ExitCode.usage;
}
