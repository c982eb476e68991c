/**
 * Builds the CLI into one bundle (dist/cli/: an entry and a chunk per command), so a command
 * loads a handful of files instead of ~250 (each TypeScript file is read, stripped of its types
 * and compiled on its own; zod and yaml are ~170 small files). Run by `npm ci` (package.json
 * "prepare") and by `npm run build:cli`. bin/bsched.js uses the bundle only while every source it
 * was built from is unchanged (size and mtime, recorded here in dist/cli/inputs.json), else it
 * runs the sources: an edited, pulled or checked-out src/ is never shadowed by an older bundle.
 * Usage: node build/cli.ts [--root DIR] (DIR: the project folder; default: this file's parent).
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "rolldown";

/**
 * Packages copied into the bundle. Only small pure-JavaScript ones that no external package
 * imports: an external package importing one would get its own copy (zod's schemas would then
 * not be the provider's zod). Everything else (fastify, pino and its worker files, ssh2 and its
 * native addon, the AWS SDK…) stays an import of node_modules, loaded only by the commands that
 * use it.
 */
export const INLINED = ["zod", "fastify-type-provider-zod", "yaml", "commander", "croner"];

/** What dist/cli/inputs.json holds: each input's path (relative to the root), size and mtime. */
export interface BundleInputs {
  files: [string, number, number][];
}

function packageOf(id: string): string {
  const parts = id.split("/");
  return id.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] as string);
}

function walk(dir: string, into: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, into);
    else if (e.isFile()) into.push(p);
  }
  return into;
}

export async function buildCli(root: string): Promise<{ dir: string; modules: number; chunks: number }> {
  const srcDir = path.join(root, "src");
  // Stat before reading: a source edited during the build then differs from what was recorded.
  const before = new Map<string, fs.Stats>();
  for (const f of walk(srcDir)) before.set(f, fs.statSync(f));
  const extra = [
    path.join(root, "build", "cli.ts"),
    ...INLINED.map((p) => path.join(root, "node_modules", p, "package.json")),
  ];
  for (const f of extra) before.set(f, fs.statSync(f));

  const out = path.join(root, "dist", "cli");
  const staging = `${out}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  const result = await build({
    input: { main: path.join(srcDir, "cli", "main.ts") },
    cwd: root,
    platform: "node",
    logLevel: "warn",
    external: (id) => {
      if (id.startsWith("node:")) return true;
      if (id.startsWith(".") || path.isAbsolute(id)) return false;
      return !INLINED.includes(packageOf(id));
    },
    plugins: [
      {
        // A source that finds files beside itself (`new URL("../package.json", import.meta.url)`)
        // must still find them from dist/cli/: its import.meta.url becomes its own source's URL,
        // computed from the bundle's location, so the project folder can still be moved.
        name: "source-import-meta-url",
        transform(code, id) {
          if (!id.startsWith(srcDir) || !code.includes("import.meta.url")) return null;
          const rel = path.relative(out, id).split(path.sep).join("/");
          return code.replaceAll("import.meta.url", `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
        },
      },
    ],
    output: {
      dir: staging,
      format: "esm",
      // One-byte source text: a file with any non-ASCII character (a "—" in a comment) is read as
      // UTF-16 and decoded the slow way, which cost more than compiling it.
      charset: "ascii",
      comments: false,
      entryFileNames: "[name].mjs",
      chunkFileNames: "[name]-[hash].mjs",
    },
  });

  const used = new Set<string>();
  let chunks = 0;
  for (const o of result.output) {
    if (o.type !== "chunk") continue;
    chunks++;
    for (const id of o.moduleIds) if (id.startsWith(srcDir)) used.add(id);
  }
  const files: BundleInputs["files"] = [];
  for (const f of [...[...used].sort(), ...extra]) {
    const s = before.get(f);
    if (!s) throw new Error(`build/cli.ts: ${f} is in the bundle but was not there before the build`);
    files.push([path.relative(root, f).split(path.sep).join("/"), s.size, s.mtimeMs]);
  }
  fs.writeFileSync(
    path.join(staging, "inputs.json"),
    `${JSON.stringify({ files } satisfies BundleInputs)}\n`,
  );
  fs.rmSync(out, { recursive: true, force: true });
  fs.renameSync(staging, out);
  return { dir: out, modules: used.size, chunks };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--root");
  const root =
    i > 0
      ? path.resolve(process.argv[i + 1] as string)
      : path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  const r = await buildCli(root);
  process.stdout.write(
    `bundled ${r.modules} sources into ${r.chunks} files in ${path.relative(root, r.dir)}\n`,
  );
}
