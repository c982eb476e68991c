import { saveSystem } from "../../ops/settings.ts";
import type { Api, ApiDeps } from "../api.ts";
import { apiErrorSchema } from "../errors.ts";
import { savedSchema, systemBodySchema } from "./settings-schemas.ts";

/* The seed's system parameters: the service login (its password to the secret store), time zone, concurrency. */

export function systemRoutes(app: Api, deps: ApiDeps): void {
  app.put(
    "/settings/system",
    {
      schema: {
        summary: "Save the system parameters; a password is stored as a secret, never sent back",
        tags: ["settings"],
        body: systemBodySchema,
        response: { 200: savedSchema, 400: apiErrorSchema, 409: apiErrorSchema },
      },
    },
    async (req) => {
      const b = req.body;
      const r = await saveSystem({
        file: deps.service.config.file,
        hash: b.hash,
        clock: deps.clock,
        serviceLogin: b.serviceLogin,
        timezone: b.timezone,
        concurrency: b.concurrency,
      });
      if (r.changed) deps.service.reload("system parameters saved in the window");
      return r;
    },
  );
}
