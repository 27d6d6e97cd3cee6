/** Authentication sources asked in order until one answers: a password file, then an HTTP service. */
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin } from '../broker/hooks.js';

/**
 * One plugin made of `first` and `next`: `first` decides every CONNECT it answers (accept or
 * refuse) and `next` is asked only when `first` abstains. Unlike two plugins in the broker's chain
 * (where an acceptance asks the next plugin too), a user the password file knows never costs a
 * request to the HTTP service. `first`'s MQTT 5 enhanced authentication (SCRAM) is kept.
 */
export function firstAnswer(first: BrokerPlugin, next: BrokerPlugin): BrokerPlugin {
  const askFirst = first.authenticate?.bind(first);
  const askNext = next.authenticate?.bind(next);
  const plugin: BrokerPlugin = {
    name: `${first.name}+${next.name}`,
    authenticate(request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult> {
      const answer = askFirst?.(request);
      if (answer instanceof Promise) return answer.then((resolved) => resolved ?? askNext?.(request));
      return answer ?? askNext?.(request);
    },
  };
  if (first.authMethods !== undefined && first.authenticateEnhanced !== undefined) {
    return { ...plugin, authMethods: first.authMethods, authenticateEnhanced: first.authenticateEnhanced.bind(first) };
  }
  return plugin;
}
