import assert from "node:assert/strict";
import { test } from "node:test";
import vm from "node:vm";
import { collectYoung, youngCollector } from "../src/platform/memory.ts";

test("the forced young collection: nothing at import, never a `gc` in bsched's own context, safe to call", () => {
  assert.equal(vm.runInNewContext("typeof gc"), "undefined", "importing it sets no V8 flag");
  collectYoung();
  collectYoung();
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined");
  const counted = youngCollector(10);
  for (let i = 0; i < 7; i++) counted(3); // collects twice, never throws
});
