/**
 * A value built at its first use, then kept. For what is costly to build and not every command
 * needs: zod's schemas are hundreds of objects, built at every start-up when made at import
 * (docs/design.md "Start-up").
 */
export function lazy<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
}
