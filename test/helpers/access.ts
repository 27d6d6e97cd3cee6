/** Tests of runtime access control: REST calls to a broker's API, MQTT.js clients that end with the test, and waiting for a server DISCONNECT. */
import assert from 'node:assert/strict';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

/** A JSON answer of the API. */
export interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test convenience: answers are checked field by field
  body: any;
  headers: Headers;
}

/** Calls `method path` on the HTTP port, with a JSON body and extra headers if given. */
export async function call(httpPort: number, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await fetch(`http://127.0.0.1:${httpPort}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text), headers: response.headers };
}

/** Calls and asserts the status, naming the answer when it differs. */
export async function expectStatus(httpPort: number, status: number, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply> {
  const reply = await call(httpPort, method, path, body, headers);
  assert.equal(reply.status, status, `${method} ${path}: ${JSON.stringify(reply.body)}`);
  return reply;
}

/** MQTT.js clients of one test file, ended by `endClients`. */
const clients = new Set<MqttClient>();

/** Connects an MQTT.js client (no reconnect) and waits for CONNACK; rejects with MQTT.js's error (its `code` is the refusal). */
export async function mqttConnect(port: number, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 8000, ...options });
  clients.add(client);
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed before CONNACK')));
    });
  } catch (error) {
    client.end(true);
    throw error;
  }
  client.on('error', () => {}); // later errors (a server DISCONNECT) are what the tests look at
  return client;
}

/** The CONNACK refusal code a connection attempt gets (fails the test if it connects). */
export async function refusal(port: number, options: IClientOptions): Promise<number> {
  try {
    await mqttConnect(port, options);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    assert.equal(typeof code, 'number', `a CONNACK refusal, got ${String(error)}`);
    return code as number;
  }
  assert.fail(`${options.clientId ?? 'client'} connected, but a refusal was expected`);
}

/** Resolves with the reason code of the server's DISCONNECT (MQTT 5) or undefined when the connection just closes. */
export function serverDisconnect(client: MqttClient, timeoutMs = 5000): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    let code: number | undefined;
    const timer = setTimeout(() => reject(new Error(`not disconnected within ${timeoutMs} ms`)), timeoutMs);
    client.once('disconnect', (packet) => (code = packet.reasonCode));
    client.once('close', () => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Ends every client made by mqttConnect. */
export function endClients(): void {
  for (const client of clients) client.end(true);
  clients.clear();
}
