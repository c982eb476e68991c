import { isDeepStrictEqual } from "node:util";
import {
  Document,
  isCollection,
  isMap,
  isScalar,
  isSeq,
  type Node,
  type Pair,
  parseDocument,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { BschedError } from "../core/errors.ts";

/**
 * Changing a config's YAML text in place (src/ops/config.ts writes it): the nodes to change are
 * found with yaml's Document API (each node knows its byte range in the text) and only those
 * bytes are replaced, so every comment, blank line and alignment outside the changed key stays
 * byte for byte. Re-printing the document would realign every comment. Pure: text in, text out.
 */

/** A key path: `sets.data.keep.daily` or its segments. */
export type ConfigKey = string | readonly string[];

export type ConfigChange = { key: ConfigKey; value: unknown } | { key: ConfigKey; unset: true };

/** `sets.data.keep.daily` → its segments; an empty segment is a usage error. */
export function keyPath(key: ConfigKey): string[] {
  const segs = typeof key === "string" ? key.split(".") : [...key];
  if (segs.length === 0 || segs.some((s) => s === "")) {
    throw new BschedError(
      "USAGE",
      `not a config key: ${JSON.stringify(typeof key === "string" ? key : segs.join("."))}`,
      {
        hint: "name a key by its path, e.g. sets.data.keep.daily or server.timezone",
      },
    );
  }
  return segs;
}

/** The text with every change applied in order (each checked: see `checked`). */
export function applyChanges(text: string, changes: readonly ConfigChange[]): string {
  let next = text;
  for (const change of changes) {
    next =
      "unset" in change
        ? unsetKey(next, keyPath(change.key))
        : setKey(next, keyPath(change.key), change.value);
  }
  return next;
}

/**
 * The text and the document with every value under a key of `secretKeys` (`*` matches one
 * segment), whatever its shape, replaced by `mask` in place; a `secret:NAME` reference is shown.
 */
export function maskSecrets(
  source: string,
  secretKeys: readonly (readonly string[])[],
  mask: string,
): { text: string; document: unknown } {
  const doc = parseDocument(source);
  // Every value under a secret key, whatever its shape, except a `secret:NAME` reference.
  const found: { at: (string | number)[]; range: [number, number] }[] = [];
  const walk = (node: unknown, at: (string | number)[]) => {
    if (at.length > 0 && isSecretKey(at.map(String), secretKeys)) {
      const isReference = isScalar(node) && typeof node.value === "string" && /^secret:\S+$/.test(node.value);
      const n = node as Node | null;
      if (!isReference && n?.range && !(isScalar(n) && n.value === null)) {
        found.push({ at, range: [n.range[0], n.range[1]] });
      }
      return;
    }
    if (isMap(node)) for (const p of node.items) walk(p.value, [...at, keyName(p)]);
    else if (isSeq(node)) for (const [i, n] of node.items.entries()) walk(n, [...at, i]);
  };
  walk(doc.contents, []);
  let text = source;
  for (const m of found.sort((x, y) => y.range[0] - x.range[0])) {
    text = `${text.slice(0, m.range[0])}"${mask}"${text.slice(m.range[1])}`;
    doc.setIn(m.at, mask);
  }
  return { text, document: doc.toJS() };
}

function isSecretKey(at: readonly string[], keys: readonly (readonly string[])[]): boolean {
  return keys.some((k) => k.length === at.length && k.every((seg, i) => seg === "*" || seg === at[i]));
}

function keyName(p: Pair): string {
  return String(isScalar(p.key) ? p.key.value : p.key);
}

function parseForEdit(text: string): Document.Parsed {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new BschedError("CONFIG_INVALID", `not valid YAML: ${doc.errors[0]?.message}`, {
      hint: "fix the YAML syntax at the line shown (with a text editor), then change it here",
    });
  }
  return doc;
}

/** Where one key is: the map holding it and its pair there (absent: the deepest map on the way). */
interface Found {
  /** The deepest map reached. */
  map: YAMLMap | undefined;
  /** How many segments of the path that map's keys are under (map is at path[0..depth)). */
  depth: number;
  /** The pair of path[depth] in map, when present. */
  pair: Pair | undefined;
}

function find(doc: Document.Parsed, segs: readonly string[]): Found {
  let node: unknown = doc.contents;
  let found: Found = { map: undefined, depth: 0, pair: undefined };
  for (let i = 0; i < segs.length; i++) {
    if (node === null || (isScalar(node) && node.value === null)) return found;
    if (!isMap(node)) {
      throw new BschedError(
        "USAGE",
        `${segs.slice(0, i).join(".") || "the config"} is ${isSeq(node) ? "a list" : "a single value"}, not a map: it has no key ${segs[i]}`,
        {
          hint: isSeq(node)
            ? `set the whole list: ${segs.slice(0, i).join(".")} '[a, b]'`
            : "check the key's spelling",
        },
      );
    }
    const pair = node.items.find((p) => keyName(p) === segs[i]);
    found = { map: node, depth: i, pair };
    if (!pair) return found;
    node = pair.value;
  }
  return found;
}

/** A value as YAML text that fits in a flow context (on one line, within `{ }` too). */
function valueText(value: unknown, like?: Scalar): string {
  if (typeof value === "string") {
    if (like?.type === "QUOTE_DOUBLE") return JSON.stringify(value);
    if (like?.type === "QUOTE_SINGLE") return `'${value.replaceAll("'", "''")}'`;
    const plain = new Document(value).toString({ lineWidth: 0, blockQuote: false }).trimEnd();
    // Plain only when it means the same string anywhere (no flow indicators, no comment start).
    return /[,[\]{}#\n]/.test(plain) || plain.startsWith("'") ? JSON.stringify(value) : plain;
  }
  const doc = new Document(value);
  if (isCollection(doc.contents)) doc.contents.flow = true;
  return doc.toString({ lineWidth: 0, blockQuote: false }).trimEnd();
}

/** `{ a: { b: value } }` for the segments still missing under an existing map. */
function nest(segs: readonly string[], value: unknown): unknown {
  return segs.reduceRight((v, k) => ({ [k]: v }), value);
}

/** The file's own line ending: a line added to a CRLF file ends with CRLF. */
const eolOf = (text: string) => (text.includes("\r\n") ? "\r\n" : "\n");

const lineStart = (text: string, at: number) => text.lastIndexOf("\n", at - 1) + 1;

function afterLine(text: string, at: number): number {
  if (at > 0 && text[at - 1] === "\n") return at;
  const nl = text.indexOf("\n", at);
  return nl === -1 ? text.length : nl + 1;
}

/** Where a pair of a block map ends: after its line (and its value's lines), its own comment included. */
function pairEnd(text: string, p: Pair): number {
  const v = p.value as Node | null;
  const k = p.key as Node;
  const end = v?.range ? (isCollection(v) && !v.flow ? v.range[1] : v.range[2]) : (k.range?.[2] ?? 0);
  return afterLine(text, end);
}

function splice(text: string, from: number, to: number, insert: string): string {
  return `${text.slice(0, from)}${insert}${text.slice(to)}`;
}

function setKey(text: string, segs: readonly string[], value: unknown): string {
  const doc = parseForEdit(text);
  const f = find(doc, segs);
  let next: string;
  if (f.pair) {
    // Present: only its value changes (a scalar keeps its quoting).
    const v = f.pair.value as Node | null;
    const rest = segs.slice(f.depth + 1);
    const newValue = rest.length > 0 ? nest(rest, value) : value;
    if (v?.range && !(isScalar(v) && v.value === null)) {
      if (isCollection(v) && !v.flow) {
        // A block map or list becomes one flow value on the key's line.
        const k = f.pair.key as Node;
        const colon = text.indexOf(":", k.range?.[1] ?? 0);
        next = splice(text, colon + 1, v.range[1], ` ${valueText(newValue)}${eolOf(text)}`);
      } else {
        next = splice(text, v.range[0], v.range[1], valueText(newValue, isScalar(v) ? v : undefined));
      }
    } else {
      // `key:` with no value yet.
      const k = f.pair.key as Node;
      const colon = text.indexOf(":", k.range?.[1] ?? 0);
      next = splice(text, colon + 1, colon + 1, ` ${valueText(newValue)}`);
    }
  } else if (f.map) {
    next = addPair(text, f.map, segs[f.depth] as string, nest(segs.slice(f.depth + 1), value));
  } else {
    // An empty file (or a document that is not a map: the schema refuses it anyway).
    const eol = eolOf(text);
    next = `${text}${text === "" || text.endsWith("\n") ? "" : eol}${segs[0]}: ${valueText(nest(segs.slice(1), value))}${eol}`;
  }
  return checked(text, next, segs, { value });
}

function addPair(text: string, map: YAMLMap, key: string, value: unknown): string {
  const pairText = `${valueText(key)}: ${valueText(value)}`;
  const last = map.items.at(-1);
  if (map.flow) {
    const lv = (last?.value ?? last?.key) as Node | undefined;
    if (lv?.range) return splice(text, lv.range[1], lv.range[1], `, ${pairText}`);
    const open = map.range?.[0] ?? 0;
    return splice(text, open + 1, open + 1, ` ${pairText} `);
  }
  if (!last) throw new Error("a block map without keys"); // the parser makes no such map
  const first = map.items[0]?.key as Node;
  const start = first.range?.[0] ?? 0;
  const indent = text.slice(lineStart(text, start), start);
  if (indent.trim() !== "") {
    throw new BschedError("USAGE", `cannot add ${key} here without rewriting the file's layout`, {
      hint: "add the key with a text editor",
    });
  }
  let at = pairEnd(text, last);
  // Comment lines indented under the last pair (its block's commented-out keys) stay with it.
  for (;;) {
    const nl = text.indexOf("\n", at);
    const end = nl === -1 ? text.length : nl + 1;
    const line = text.slice(at, end).replace(/\r?\n$/, "");
    const lead = line.length - line.trimStart().length;
    if (end === at || !line.trimStart().startsWith("#") || lead <= indent.length) break;
    at = end;
  }
  const eol = eolOf(text);
  const nl = at === text.length && !text.endsWith("\n") ? eol : "";
  return splice(text, at, at, `${nl}${indent}${pairText}${eol}`);
}

function unsetKey(text: string, segs: readonly string[]): string {
  const doc = parseForEdit(text);
  const f = find(doc, segs);
  if (!f.pair || !f.map || f.depth !== segs.length - 1) return text; // already absent
  const map = f.map;
  const i = map.items.indexOf(f.pair);
  const k = f.pair.key as Node;
  const v = f.pair.value as Node | null;
  if (!map.flow && map.items.length === 1 && segs.length > 1) {
    // Its map's only key: the map stays, empty (`keep: {}`), for the schema to judge.
    return checked(text, setKey(text, segs.slice(0, -1), {}), segs, { unset: true });
  }
  let next: string;
  if (map.flow) {
    let from = k.range?.[0] ?? 0;
    let to = v?.range?.[1] ?? k.range?.[1] ?? from;
    const after = map.items[i + 1]?.key as Node | undefined;
    const before = (map.items[i - 1]?.value ?? map.items[i - 1]?.key) as Node | undefined;
    if (after?.range) to = after.range[0];
    else if (before?.range) from = before.range[1];
    next = splice(text, from, to, "");
  } else {
    const from = lineStart(text, k.range?.[0] ?? 0);
    if (text.slice(from, k.range?.[0]).trim() !== "") {
      throw new BschedError("USAGE", `cannot remove ${segs.join(".")} without rewriting the file's layout`, {
        hint: "remove the key with a text editor",
      });
    }
    next = splice(text, from, pairEnd(text, f.pair), "");
  }
  return checked(text, next, segs, { unset: true });
}

/**
 * The edited text must hold exactly the old document with that one change: anything else (a
 * value that reads back differently in its new place) is refused before it can be written.
 */
function checked(
  text: string,
  next: string,
  segs: readonly string[],
  change: { value: unknown } | { unset: true },
): string {
  const want = parseDocument(text).toJS() ?? {};
  const expect = structuredClone(want) as Record<string, unknown>;
  let at = expect;
  for (const s of segs.slice(0, -1)) {
    if (at[s] === null || typeof at[s] !== "object") at[s] = {};
    at = at[s] as Record<string, unknown>;
  }
  const last = segs.at(-1) as string;
  if ("unset" in change) delete at[last];
  else at[last] = change.value;
  const after = parseDocument(next);
  if (after.errors.length > 0 || !isDeepStrictEqual(after.toJS() ?? {}, expect)) {
    throw new BschedError("CONFIG_INVALID", `${segs.join(".")}: this value cannot be written in place here`, {
      hint: "make the change with a text editor",
    });
  }
  return next;
}
