import { existsSync } from "node:fs";
import { createServer } from "node:net";

/**
 * Whether the programs a real-server test starts are installed. Missing ones skip the test,
 * naming the Debian package; in CI (.ci/run sets BSCHED_TEST_SERVERS=required) they fail it, so
 * a server test never passes by not running.
 */
export function missingPrograms(programs: Record<string, string>): string | undefined {
  const missing = Object.entries(programs).filter(([file]) => !existsSync(file));
  if (missing.length === 0) return undefined;
  const what = `needs ${missing.map(([file, pkg]) => `${file} (Debian package ${pkg})`).join(", ")}`;
  if (process.env.BSCHED_TEST_SERVERS === "required") throw new Error(`this test ${what}: not installed`);
  return what;
}

/** A free TCP port on loopback (the kernel's choice, released before the server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}
