import { z } from "zod";
import { localTime } from "../../cli/local-time.ts";
import { readConfig } from "../../ops/config.ts";
import { nextForSettings, saveSet, saveSets, settingsView } from "../../ops/settings.ts";
import type { Api, ApiDeps } from "../api.ts";
import { apiErrorSchema } from "../errors.ts";
import {
  hashSchema,
  nextAnswerSchema,
  nextBodySchema,
  savedSchema,
  setInputSchema,
  settingsSchema,
} from "./settings-schemas.ts";

/*
 * The seed's window: each set's settings, the next runs they would give, and saving them
 * (src/ops/settings.ts does it all; the daemon reloads after a save).
 */

const errors = { 400: apiErrorSchema, 409: apiErrorSchema };

export function settingsRoutes(app: Api, deps: ApiDeps): void {
  app.get(
    "/settings",
    {
      schema: {
        summary: "Each set's settings and the system parameters (secrets masked), with the file's hash",
        tags: ["settings"],
        response: { 200: settingsSchema },
      },
    },
    async () => settingsView(readConfig(deps.service.config.file)),
  );

  app.post(
    "/settings/next",
    {
      schema: {
        summary: "The next run times a set's unsaved settings would give (the code of `bsched next`)",
        tags: ["settings"],
        body: nextBodySchema,
        response: { 200: nextAnswerSchema, 400: apiErrorSchema },
      },
    },
    async (req) => {
      const b = req.body;
      const r = await nextForSettings({
        file: deps.service.config.file,
        clock: deps.clock,
        set: b.set,
        settings: b.settings,
        from: b.from === undefined ? undefined : new Date(b.from),
        count: b.count,
      });
      return {
        timezone: r.timezone,
        chain: r.chain,
        runs: r.runs.map((x) => ({
          at: x.at.toISOString(),
          local: localTime(x.at, r.timezone),
          mode: x.mode,
        })),
      };
    },
  );

  app.put(
    "/settings/sets/:set",
    {
      schema: {
        summary: "Save a set's settings (a new id adds a set): checked, written keeping comments, reloaded",
        tags: ["settings"],
        params: z.object({ set: z.string().min(1) }),
        body: z.object({ hash: hashSchema, settings: setInputSchema }),
        response: { 200: savedSchema, ...errors },
      },
    },
    async (req) => {
      const r = await saveSet({
        file: deps.service.config.file,
        hash: req.body.hash,
        set: req.params.set,
        settings: req.body.settings,
      });
      if (r.changed) deps.service.reload("settings saved in the window");
      return r;
    },
  );

  app.put(
    "/settings/sets",
    {
      schema: {
        summary:
          "Save several sets at once (the window's OK): one edit of bsched.yaml, all written or none, every bad field reported",
        tags: ["settings"],
        body: z.object({ hash: hashSchema, sets: z.record(z.string().min(1), setInputSchema) }),
        response: { 200: savedSchema, ...errors },
      },
    },
    async (req) => {
      const r = await saveSets({ file: deps.service.config.file, hash: req.body.hash, sets: req.body.sets });
      if (r.changed) deps.service.reload("settings saved in the window");
      return r;
    },
  );
}
