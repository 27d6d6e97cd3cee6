/** Serves the built dashboard: static files with cache and security headers. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.svg', '.json', '.map']);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.map': 'application/json',
};

/**
 * Where the built dashboard is: `dist/dashboard` next to the compiled code (dist/http → ../dashboard)
 * or, when running from src with tsx, under the repository's dist.
 */
export function defaultDashboardDir(): string | undefined {
  const candidates = [new URL('../dashboard/', import.meta.url), new URL('../../dist/dashboard/', import.meta.url)];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

/** Serves the files of one folder (the built dashboard), read once and kept in memory. */
export class StaticFiles {
  private readonly cache = new Map<string, { raw: Buffer; gzip: Buffer | undefined }>();

  constructor(private readonly root: string) {}

  /** Answers GET `path` from the folder; returns false when there is no such file. */
  async serve(path: string, response: ServerResponse, head: boolean, acceptEncoding = ''): Promise<boolean> {
    const relative = path === '/' || path === '' ? 'index.html' : path.slice(1);
    const file = normalize(join(this.root, relative));
    if (!file.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep)) return false;
    let entry = this.cache.get(file);
    if (entry === undefined) {
      let raw: Buffer;
      try {
        raw = await readFile(file);
      } catch {
        return false;
      }
      // Text compresses well (MQTT.js to about a third): compressed once, on first use.
      entry = { raw, gzip: COMPRESSIBLE.has(extname(file)) ? gzipSync(raw) : undefined };
      this.cache.set(file, entry);
    }
    const gzip = entry.gzip !== undefined && /\bgzip\b/.test(acceptEncoding);
    const body = gzip ? entry.gzip! : entry.raw;
    // Vite names assets by content hash: they never change. index.html must be checked each time.
    const immutable = relative.startsWith('assets/');
    response.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    response.end(head ? undefined : body);
    return true;
  }
}
