// `superv profile --format pprof`: a V8 .cpuprofile turned into pprof (gzipped protobuf), the format
// Pyroscope, Grafana and `go tool pprof` read. pprof-format (pure JavaScript, no dependencies) encodes it;
// loaded only for this.

import { gzipSync } from 'node:zlib';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';

/** What a .cpuprofile holds (Profiler.stop's `profile`). */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; children?: number[] }>;
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export function cpuProfileToPprof(cp: CpuProfile): Buffer {
  const strings = new StringTable();
  const parent = new Map<number, number>();
  for (const n of cp.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const functions = new Map<string, PFunction>();
  const locations = new Map<number, Location>();
  for (const n of cp.nodes) {
    const f = n.callFrame;
    const key = `${f.functionName}\t${f.url}\t${f.lineNumber}`;
    let fn = functions.get(key);
    if (!fn) {
      fn = new PFunction({ id: functions.size + 1, name: strings.dedup(f.functionName || '(anonymous)'), filename: strings.dedup(f.url), startLine: f.lineNumber + 1 });
      functions.set(key, fn);
    }
    locations.set(n.id, new Location({ id: n.id, line: [new Line({ functionId: fn.id, line: f.lineNumber + 1, column: f.columnNumber + 1 })] }));
  }
  const samples = cp.samples ?? [];
  const deltas = cp.timeDeltas ?? [];
  const interval = samples.length > 0 ? (cp.endTime - cp.startTime) / samples.length : 0;
  const sample: Sample[] = [];
  for (let i = 0; i < samples.length; i++) {
    const stack: number[] = [];
    for (let id: number | undefined = samples[i]; id !== undefined; id = parent.get(id)) stack.push(id);
    // Each sample stands for the time until the next one (the last, for the mean interval).
    const us = Math.max(0, deltas[i + 1] ?? interval);
    sample.push(new Sample({ locationId: stack, value: [1, Math.round(us * 1000)] }));
  }
  const profile = new Profile({
    sampleType: [new ValueType({ type: strings.dedup('samples'), unit: strings.dedup('count') }),
      new ValueType({ type: strings.dedup('cpu'), unit: strings.dedup('nanoseconds') })],
    sample, location: [...locations.values()], function: [...functions.values()], stringTable: strings,
    timeNanos: Math.round(Date.now() * 1e6 - (cp.endTime - cp.startTime) * 1000),
    durationNanos: Math.round((cp.endTime - cp.startTime) * 1000),
    periodType: new ValueType({ type: strings.dedup('cpu'), unit: strings.dedup('nanoseconds') }),
    period: Math.round(interval * 1000),
  });
  return gzipSync(profile.encode());
}
