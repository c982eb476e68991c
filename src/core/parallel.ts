/**
 * `fn` over `items`, at most `n` at once, started in order. The first failure starts nothing
 * more; `onFailure` hears of it at once (so the caller can stop what is still in flight: a copy
 * destroys the other files' streams), and it is thrown once everything started has ended, so
 * nothing runs on behind the caller's back (a staging area is aborted only after its puts ended).
 */
export async function inParallel<T>(
  items: readonly T[],
  n: number,
  fn: (item: T, index: number) => Promise<void>,
  onFailure?: (e: unknown) => void,
): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (e) {
        if (failure === undefined) {
          failure = { e };
          onFailure?.(e);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failure) throw failure.e;
}

/** `fn` over `items`, at most `n` at once, the results in the items' order (the first failure thrown). */
export async function mapInParallel<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  await inParallel(items, n, async (x, i) => {
    out[i] = await fn(x);
  });
  return out;
}
