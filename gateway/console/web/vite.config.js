// Vite builds the console into ../dist, which the gateway embeds (go:embed).
// The output must be byte-for-byte reproducible (`make console-check` diffs
// a fresh build against the committed dist/): fixed file names, no build
// timestamps, no source maps with absolute paths.
import { defineConfig } from 'vite';

// `npm exec vite` (dev server) proxies the API to this gateway.
const gateway = process.env.NIMBUS_GATEWAY || 'http://127.0.0.1:9000';

export default defineConfig({
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  resolve: {
    alias: {
      react: 'preact/compat',
      'react-dom': 'preact/compat',
    },
  },
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2020',
    assetsInlineLimit: 0,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/console.js',
        chunkFileNames: 'assets/[name].js',
        assetFileNames: 'assets/[name][extname]',
      },
    },
  },
  server: {
    proxy: {
      '/console/api': gateway,
      '/nimbus': gateway,
      '^/20[0-9][0-9]-': gateway,
    },
  },
});
