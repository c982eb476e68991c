import assert from "node:assert/strict";
import { test } from "node:test";
import { type NotifyPayload, postWebhook } from "../src/notify/webhook.ts";
import { webhookReceiver } from "./helpers/webhook.ts";

/** A local webhook receiver on 127.0.0.1 that answers with the given statuses in turn. */
async function receiver(statuses: number[]) {
  const hook = await webhookReceiver({ statuses });
  return { url: hook.url("/hook/secret-token"), bodies: hook.requests, close: hook.close };
}

const payload: NotifyPayload = {
  tool: "bsched",
  event: "failure",
  set: "data",
  host: "srv1",
  planned: "2026-03-01T04:00:00.000Z",
  status: "failed",
  startedAt: "2026-03-01T04:00:00.000Z",
  finishedAt: "2026-03-01T04:00:01.000Z",
  backup: null,
  files: 0,
  bytes: 0,
  warnings: 0,
  error: "source folder missing",
};

function recorder() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    info: (obj: object, msg: string) =>
      lines.push({ level: "info", obj: obj as Record<string, unknown>, msg }),
    warn: (obj: object, msg: string) =>
      lines.push({ level: "warn", obj: obj as Record<string, unknown>, msg }),
  };
}

test("posts the run's outcome as JSON", async () => {
  const r = await receiver([200]);
  try {
    assert.equal(await postWebhook(r.url, payload, { sleep: async () => {} }), true);
    assert.deepEqual(r.bodies, [{ method: "POST", type: "application/json", json: payload }]);
  } finally {
    await r.close();
  }
});

test("retries 5xx and 429 with growing delays, then succeeds", async () => {
  const r = await receiver([503, 429, 200]);
  const delays: number[] = [];
  try {
    const ok = await postWebhook(r.url, payload, {
      baseDelayMs: 100,
      sleep: async (ms) => void delays.push(ms),
    });
    assert.equal(ok, true);
    assert.equal(r.bodies.length, 3);
    assert.deepEqual(delays, [100, 200]);
  } finally {
    await r.close();
  }
});

test("a receiver that keeps failing: logged (without the URL's secret), never thrown", async () => {
  const r = await receiver([500]);
  const log = recorder();
  try {
    assert.equal(await postWebhook(r.url, payload, { attempts: 3, sleep: async () => {}, log }), false);
    assert.equal(r.bodies.length, 3);
    const warn = log.lines.find((l) => l.level === "warn");
    assert.equal(warn?.obj.error, "HTTP 500");
    assert.doesNotMatch(JSON.stringify(log.lines), /secret-token/);
  } finally {
    await r.close();
  }
});

test("a 4xx is not retried; nothing listening is a logged failure", async () => {
  const r = await receiver([404]);
  try {
    assert.equal(await postWebhook(r.url, payload, { sleep: async () => {} }), false);
    assert.equal(r.bodies.length, 1);
  } finally {
    await r.close();
  }
  const log = recorder();
  // The port of the closed receiver: connection refused on every attempt.
  assert.equal(await postWebhook(r.url, payload, { attempts: 2, sleep: async () => {}, log }), false);
  assert.ok(log.lines.some((l) => l.level === "warn"));
});
