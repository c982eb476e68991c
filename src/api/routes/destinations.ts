import { z } from "zod";
import { BschedError } from "../../core/errors.ts";
import { removeDestination, saveDestination, testDestination } from "../../ops/settings.ts";
import type { Api, ApiDeps } from "../api.ts";
import { apiErrorSchema } from "../errors.ts";
import {
  destinationInputSchema,
  destinationTestBodySchema,
  destinationTestSchema,
  hashSchema,
  savedSchema,
} from "./settings-schemas.ts";

/* Destinations in the system parameters: add, edit, remove, and "test connection". */

const errors = { 400: apiErrorSchema, 404: apiErrorSchema, 409: apiErrorSchema };
const nameParam = z.object({ name: z.string().min(1) });

export function destinationRoutes(app: Api, deps: ApiDeps): void {
  app.put(
    "/settings/destinations/:name",
    {
      schema: {
        summary: "Add or change a destination; a secret given in plain goes to the secret store",
        tags: ["settings"],
        params: nameParam,
        body: z.object({ hash: hashSchema, destination: destinationInputSchema }),
        response: { 200: savedSchema, ...errors },
      },
    },
    async (req) => {
      const r = await saveDestination({
        file: deps.service.config.file,
        hash: req.body.hash,
        clock: deps.clock,
        name: req.params.name,
        destination: req.body.destination,
      });
      if (r.changed) deps.service.reload(`destination ${req.params.name} saved in the window`);
      return r;
    },
  );

  app.delete(
    "/settings/destinations/:name",
    {
      schema: {
        summary: "Remove a destination no set uses (its stored secrets stay)",
        tags: ["settings"],
        params: nameParam,
        // In the query string (a DELETE usually has no body), or in a JSON body.
        querystring: z.object({ hash: hashSchema.optional() }),
        body: z.object({ hash: hashSchema }).nullish(),
        response: { 200: savedSchema, ...errors },
      },
    },
    async (req) => {
      const hash = req.query.hash ?? req.body?.hash;
      if (hash === undefined)
        throw new BschedError("BAD_REQUEST", "the hash of the settings read is missing", {
          hint: "send ?hash= (the hash GET /api/settings gave)",
        });
      const r = await removeDestination({ file: deps.service.config.file, hash, name: req.params.name });
      if (r.changed) deps.service.reload(`destination ${req.params.name} removed in the window`);
      return r;
    },
  );

  app.post(
    "/destinations/test",
    {
      schema: {
        summary: "Test a destination's connection (saved, or unsaved: its secrets used for the test only)",
        tags: ["settings"],
        body: destinationTestBodySchema,
        response: { 200: destinationTestSchema, 400: apiErrorSchema, 404: apiErrorSchema },
      },
    },
    async (req) =>
      testDestination({
        file: deps.service.config.file,
        name: req.body.name,
        destination: req.body.destination,
      }),
  );
}
