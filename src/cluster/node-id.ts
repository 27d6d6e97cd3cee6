/** What a cluster node id may hold: it is part of Redis keys and of channel messages. */
const NODE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** True for 1-128 of A-Z a-z 0-9 . _ : - */
export function isValidNodeId(id: string): boolean {
  return NODE_ID.test(id);
}

/** The default node id: the host name (made valid) and the MQTT port, stable across restarts. */
export function defaultNodeId(hostname: string, port: number): string {
  return `${hostname.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 100)}-${port}`;
}
