/**
 * Plugins limited to some listeners (per-listener security, as Mosquitto's per_listener_settings):
 * outside its listeners a scoped plugin abstains, and the anonymous policy is decided per listener.
 */
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin, ClientIdentity } from '../broker/hooks.js';

/**
 * `plugin`, abstaining for clients on listeners `applies` says no to. With `authenticateOnly`, only
 * its authenticate hook is limited (its authorization and observer hooks keep applying everywhere); its MQTT 5
 * enhanced authentication is kept only when it applies to every listener.
 */
export function scopedPlugin(plugin: BrokerPlugin, applies: (listener: string) => boolean, authenticateOnly = false): BrokerPlugin {
  const wrapped: BrokerPlugin = { name: plugin.name };
  if (plugin.authenticate !== undefined) {
    const authenticate = plugin.authenticate.bind(plugin);
    wrapped.authenticate = (request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult> => (applies(request.listener) ? authenticate(request) : undefined);
  }
  const inScope = (client: ClientIdentity): boolean => authenticateOnly || applies(client.listener);
  if (plugin.authorizePublish !== undefined) {
    const hook = plugin.authorizePublish.bind(plugin);
    wrapped.authorizePublish = (client, topic, qos, retain) => (inScope(client) ? hook(client, topic, qos, retain) : undefined);
  }
  if (plugin.authorizeSubscribe !== undefined) {
    const hook = plugin.authorizeSubscribe.bind(plugin);
    wrapped.authorizeSubscribe = (client, filter, qos) => (inScope(client) ? hook(client, filter, qos) : undefined);
  }
  if (plugin.authorizeReceive !== undefined) {
    const hook = plugin.authorizeReceive.bind(plugin);
    wrapped.authorizeReceive = (client, topic) => (inScope(client) ? hook(client, topic) : undefined);
  }
  if (plugin.onConnect !== undefined) {
    const hook = plugin.onConnect.bind(plugin);
    wrapped.onConnect = (client) => {
      if (inScope(client)) hook(client);
    };
  }
  if (plugin.onDisconnect !== undefined) {
    const hook = plugin.onDisconnect.bind(plugin);
    wrapped.onDisconnect = (client, reason) => {
      if (inScope(client)) hook(client, reason);
    };
  }
  return wrapped;
}

/** Accepts the clients that no plugin accepted on listeners where anonymous clients are allowed; abstains elsewhere. */
export function anonymousPolicy(allowed: (listener: string) => boolean): BrokerPlugin {
  return {
    name: 'anonymous-per-listener',
    authenticate: (request) => (allowed(request.listener) ? 'accept' : undefined),
  };
}
