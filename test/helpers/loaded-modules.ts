/**
 * Preloaded with `--import` (test/startup.test.ts): records every module the process loads —
 * bsched's files, node_modules and `node:` builtins — and writes their URLs, one a line, to the
 * file named by LOADED_MODULES_FILE when the process exits.
 */
import fs from "node:fs";
import module from "node:module";

const seen: string[] = [];
module.registerHooks({
  load(url, context, next) {
    seen.push(url);
    return next(url, context);
  },
});
process.on("exit", () => {
  fs.writeFileSync(process.env.LOADED_MODULES_FILE as string, `${seen.join("\n")}\n`);
});
