// Vite builds the console into ../dist, which the gateway embeds (go:embed).
// The output must be byte-for-byte reproducible (`make console-check` diffs
// a fresh build against the committed dist/): fixed file names, no build
// timestamps, no source maps with absolute paths.
import { defineConfig } from 'vite';

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
    // `npm exec vite` against a running `nimbus dev` on :9000.
    proxy: {
      '/console/api': 'http://127.0.0.1:9000',
      '/nimbus': 'http://127.0.0.1:9000',
      '^/20[0-9][0-9]-': 'http://127.0.0.1:9000',
    },
  },
});
