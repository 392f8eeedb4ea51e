/**
 * A call to one of an adapter's methods, bound to the adapter.
 *
 * @example
 * ```ts
 * const call: AdapterCall = (...args) => adapter.read(...(args as [string, string]));
 * ```
 */
export type AdapterCall = (...args: unknown[]) => unknown;

/**
 * An adapter whose methods are replaced by wrappers, everything else passing through untouched
 * (so the adapter is still recognised for what it is: a transactional outbox's shared database).
 * Each method is read on the adapter itself when called and bound to it (a class's `#private`
 * fields are not the proxy's); its wrapper is built once per method.
 *
 * @param adapter - The adapter.
 * @param wrap - The wrapper of a method (given its name and the bound call), or `undefined` to
 *   leave it as it is.
 * @returns The wrapped adapter.
 * @example
 * ```ts
 * const logged = withWrappedMethods(adapter, (name, call) => (...args) => (console.log(name), call(...args)));
 * ```
 */
export function withWrappedMethods<T extends object>(
  adapter: T,
  wrap: (property: string | symbol, call: AdapterCall) => AdapterCall | undefined,
): T {
  // By the method itself, so an adapter whose methods are replaced is called as it is now.
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(adapter, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const known = wrapped.get(value);
      if (known !== undefined) return known;
      const call: AdapterCall = (value as AdapterCall).bind(target);
      const method = wrap(property, call) ?? call;
      wrapped.set(value, method);
      return method;
    },
  });
}
