import path from "node:path";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

// The window, built by `npm ci` (package.json "prepare") into web/dist, which the daemon serves.
export default defineConfig({
  root: here,
  base: "/",
  plugins: [react()],
  build: { outDir: path.join(here, "dist"), emptyOutDir: true, sourcemap: false },
  logLevel: "warn",
});
