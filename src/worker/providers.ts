// Named state providers: the public way for an app (or superv's own DB and outbound instrumentation) to
// put its state in a dump. The registry lives on a global symbol so the copy of superv the worker
// bootstrap loaded and a copy the app requires share it.

export type StateProvider = () => unknown;

const REGISTRY = Symbol.for('superv.state-providers');
type Holder = { [REGISTRY]?: Map<string, StateProvider> };

function registry(): Map<string, StateProvider> {
  const g = globalThis as Holder;
  return (g[REGISTRY] ??= new Map());
}

/**
 * Registers `fn` under `name`; its return value (JSON-serialisable, bounded) appears in every dump under
 * `capture.state[name]`. It is called on the main thread at capture time, possibly on top of blocked
 * code, so it must be synchronous and quick; a provider that throws is reported, not fatal.
 */
export function registerStateProvider(name: string, fn: StateProvider): void {
  if (typeof name !== 'string' || name === '' || typeof fn !== 'function') {
    throw new TypeError('registerStateProvider(name, fn): name must be a non-empty string and fn a function');
  }
  registry().set(name, fn);
}

export function unregisterStateProvider(name: string): void {
  registry().delete(name);
}

export function stateProviders(): ReadonlyMap<string, StateProvider> {
  return registry();
}
