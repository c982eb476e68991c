import { StringDecoder } from "node:string_decoder";
import { BschedError } from "../core/errors.ts";

/**
 * Read one line from the terminal without echo: stdin in raw mode, the prompt on stderr. Enter
 * ends it; Backspace erases; Ctrl-C and Ctrl-D (on an empty line) give up (CANCELLED). Nothing
 * typed is ever written anywhere.
 */
export function readHidden(prompt: string, input: NodeJS.ReadStream = process.stdin): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder("utf8");
    let value = "";
    const wasRaw = input.isRaw;
    // Raw mode before the prompt: what is typed once the prompt shows is never echoed.
    input.setRawMode(true);
    process.stderr.write(prompt);
    input.resume();
    const finish = (err?: Error) => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.setRawMode(wasRaw);
      input.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const cancelled = () =>
      new BschedError("CANCELLED", "secret entry cancelled: nothing stored", {
        hint: "run the command again",
      });
    const onEnd = () => finish(cancelled());
    const onData = (chunk: Buffer) => {
      for (const ch of decoder.write(chunk)) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003" || (ch === "\u0004" && value === "")) return finish(cancelled());
        if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
        else if (ch === "\u0015")
          value = ""; // Ctrl-U: erase the line
        else if (ch >= " " || ch === "\t") value += ch;
      }
    };
    input.on("data", onData);
    input.on("end", onEnd);
  });
}

/** All of a non-terminal stdin, less one trailing newline (`echo` adds one; the value never has it). */
export async function readAllStdin(input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  const text = Buffer.concat(chunks).toString("utf8");
  return text.replace(/\r?\n$/, "");
}
