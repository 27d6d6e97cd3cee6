/** Checks that every file the configuration names (certificates, keys, password and ACL files) can be read. */
import { accessSync, constants, statSync } from 'node:fs';
import type { StarlingConfig } from './schema.js';

/** One message per file that cannot be read, naming the setting and the path. */
export function unreadableFiles(config: Pick<StarlingConfig, 'tls' | 'auth' | 'websocket' | 'listeners' | 'bridges'>): string[] {
  const files: Array<[string, string | undefined]> = [
    ['tls.certFile', config.tls?.certFile],
    ['tls.keyFile', config.tls?.keyFile],
    ['tls.caFile', config.tls?.caFile],
    ['auth.passwordFile', config.auth?.passwordFile],
    ['auth.aclFile', config.auth?.aclFile],
    ['auth.jwt.keyFile', config.auth?.jwt?.keyFile],
    ['auth.jwt.jwksFile', config.auth?.jwt?.jwksFile],
    ['websocket.certFile', config.websocket?.certFile],
    ['websocket.keyFile', config.websocket?.keyFile],
  ];
  config.listeners.forEach((l, i) => {
    for (const key of ['certFile', 'keyFile', 'caFile'] as const) files.push([`listeners[${i}].${key}`, l[key]]);
    files.push([`listeners[${i}].auth.passwordFile`, l.auth?.passwordFile], [`listeners[${i}].auth.aclFile`, l.auth?.aclFile]);
  });
  config.bridges.forEach((b, i) => {
    for (const key of ['caFile', 'certFile', 'keyFile'] as const) files.push([`bridges[${i}].${key}`, b[key]]);
  });
  const errors: string[] = [];
  for (const [setting, path] of files) {
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
      if (statSync(path).isDirectory()) errors.push(`${setting}: ${JSON.stringify(path)} is a directory, not a file`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
      errors.push(`${setting}: cannot read ${JSON.stringify(path)}: ${why}`);
    }
  }
  return errors;
}
