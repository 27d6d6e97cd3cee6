/** Programs from Debian packages that tests drive: a missing one fails the test with one line naming the package. */
import { existsSync } from 'node:fs';

/** The Debian package of each program the tests use (`.ci/run` installs them all). */
export const PACKAGES: Readonly<Record<string, string>> = {
  '/usr/sbin/mosquitto': 'mosquitto',
  '/usr/bin/mosquitto_passwd': 'mosquitto',
  '/usr/bin/mosquitto_pub': 'mosquitto-clients',
  '/usr/bin/mosquitto_sub': 'mosquitto-clients',
  '/usr/bin/redis-server': 'redis-server',
  '/usr/bin/chromium': 'chromium',
  '/usr/bin/openssl': 'openssl',
  '/usr/bin/systemd-analyze': 'systemd',
};

/** Returns `path`, or throws one line saying which Debian package provides it. */
export function requireProgram(path: string): string {
  if (existsSync(path)) return path;
  const pkg = PACKAGES[path] ?? 'the package that provides it';
  throw new Error(`${path} is not installed: apt-get install -y ${pkg} (or run .ci/run, which installs every package the tests need)`);
}
