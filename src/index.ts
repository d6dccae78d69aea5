// The public API for apps running under superv.
export { registerStateProvider, unregisterStateProvider, type StateProvider } from './worker/providers';
export type { Dump, Capture, Frame, RequestInfo } from './dump/types';
