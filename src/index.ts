// The public API for apps running under superv.
export { registerStateProvider, unregisterStateProvider, type StateProvider } from './forensics/providers';
export type { Dump, Capture, Frame, RequestInfo } from './forensics/types';
