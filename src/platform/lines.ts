/**
 * Call `fn` with each line a child's output stream gives (without its newline), the last one even
 * without a newline: a hook's or a drill check's output goes to the log line by line, as written.
 */
export function eachLine(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  let rest = "";
  stream.setEncoding?.("utf8");
  stream.on("data", (chunk: string) => {
    rest += chunk;
    const parts = rest.split("\n");
    rest = parts.pop() ?? "";
    for (const p of parts) fn(p);
  });
  stream.on("end", () => {
    if (rest) fn(rest);
  });
}
