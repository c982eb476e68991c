import { status } from "../../ops/status.ts";
import type { Api, ApiDeps } from "../api.ts";
import { statusSchema } from "../schemas/status.ts";
import { StatusCache } from "../status-cache.ts";

/*
 * An example of the pattern every route file follows: a function registering its routes, each
 * with zod schemas (they validate, serialise and document it in /api/openapi.json), calling the
 * ops layer with the daemon's config, clock and open catalog.
 */

export function statusRoutes(app: Api, deps: ApiDeps): void {
  const { service, clock } = deps;
  // Made again after every run start or end and config reload; see status-cache.ts.
  const cache = new StatusCache(service, () =>
    status({ config: service.config, clock, catalog: service.catalog }, { offline: true }),
  );
  app.addHook("onClose", async () => cache.close());
  app.get(
    "/status",
    {
      schema: {
        summary: "Each set's last run, next run, backups and copies; the daemon's health",
        tags: ["status"],
        // The ops layer's Status (src/ops/status.ts), each field described.
        response: { 200: statusSchema },
      },
    },
    async () => cache.get(),
  );
}
