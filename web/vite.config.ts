import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Brotli and gzip copies of each text asset beside it, made once at build time at the best ratio
 * (the daemon serves them with @fastify/static's preCompressed): the first load moves about a
 * quarter of the bytes without compressing per request.
 */
function precompress(outDir: string): Plugin {
  return {
    name: "bsched-precompress",
    apply: "build",
    closeBundle() {
      for (const e of readdirSync(outDir, { recursive: true, withFileTypes: true })) {
        if (!e.isFile() || !/\.(js|css|html|svg|json)$/.test(e.name)) continue;
        const file = path.join(e.parentPath, e.name);
        // Every one, however small: @fastify/static answers 404 for a directory's index.html
        // that has no compressed copy when the browser accepts one.
        const data = readFileSync(file);
        writeFileSync(
          `${file}.br`,
          brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        );
        writeFileSync(`${file}.gz`, gzipSync(data, { level: 9 }));
      }
    },
  };
}

const outDir = path.join(here, "dist");

// The window, built by `npm ci` (package.json "prepare") into web/dist, which the daemon serves.
export default defineConfig({
  root: here,
  base: "/",
  plugins: [react(), precompress(outDir)],
  build: { outDir, emptyOutDir: true, sourcemap: false },
  logLevel: "warn",
});
