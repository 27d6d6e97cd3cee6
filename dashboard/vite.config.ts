// Builds the dashboard into dist/dashboard, which the broker's HTTP server serves (npm run build).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const broker = process.env['STARLING_HTTP'] ?? 'http://127.0.0.1:18083';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs: the dashboard works under any path a reverse proxy puts it.
  base: './',
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
    chunkSizeWarningLimit: 600,
  },
  // `npx vite dashboard` during development: the API and MQTT go to a running broker.
  server: {
    proxy: {
      '/api': broker,
      '/mqtt': { target: broker.replace(/^http/, 'ws'), ws: true },
    },
  },
});
