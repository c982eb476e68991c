import { BschedError } from "../core/errors.ts";

/**
 * Manifests and backup folders are untrusted input: a path is accepted only if it is relative,
 * has no empty, "." or ".." component and no NUL byte, so joining it to a target stays inside.
 */
export function checkRelativePath(p: unknown, what: string): string {
  if (typeof p !== "string" || p.length === 0) {
    throw new BschedError("UNSAFE_PATH", `${what}: empty or non-string path refused`);
  }
  if (p.includes("\0"))
    throw new BschedError("UNSAFE_PATH", `${what}: path with a NUL byte refused: ${JSON.stringify(p)}`);
  if (p.startsWith("/"))
    throw new BschedError("UNSAFE_PATH", `${what}: absolute path refused: ${JSON.stringify(p)}`);
  for (const part of p.split("/")) {
    if (part === "" || part === "." || part === "..") {
      throw new BschedError(
        "UNSAFE_PATH",
        `${what}: path with an empty, "." or ".." component refused: ${JSON.stringify(p)}`,
      );
    }
  }
  return p;
}

export function parentOf(p: string): string | undefined {
  const i = p.lastIndexOf("/");
  return i < 0 ? undefined : p.slice(0, i);
}

/** Code-unit order: locale-independent, so manifests sort the same on every machine. */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
