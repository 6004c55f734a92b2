/** Builds the designer into designer/dist, served by the API at /designer (see server/http/routes/designer.ts). */
import path from 'path';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: __dirname,
  base: '/designer/',
  plugins: [react()],
  build: {
    outDir: path.join(__dirname, 'dist'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 2000,
  },
  server: {
    // `npx vite --config designer/vite.config.ts` for development: the API runs on :8080.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
