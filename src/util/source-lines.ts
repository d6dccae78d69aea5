// Which source line a whole generated line comes from, for positions that have a line and no column (the CPU
// samples' frames). SourceMap.findEntry needs a column: asked with a large one it answers the last mapping at or
// before it, which on a minified line (a whole bundle on line 1) is an arbitrary function of the file. So a
// generated line is answered here only when all the code on it comes from one source file and a few lines of it:
// then with the first of those lines (where the statement starts: tsc joins a multi-line call or chain into one
// line). Code from several files, or from far apart (a minified line; most of tsc's `exports.f = f;` lines, never
// hot), has no answer, and the frame keeps its generated position. Measured on this project's own tsc output: 97 % of the
// mapped lines have exactly one source line, and there the answer is findEntry's.
// Pure: decodes the map's `mappings` (base64 VLQ, source map v3) once per map, into one entry per generated line.

/** How many source lines one generated line may span and still be answered (its first). */
export const MAX_LINE_SPAN = 5;
const NONE = -1;
const MIXED = -2;

const B64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/**
 * Characters of `mappings` decoded between two turns of the event loop by `decode`. Measured on a loaded 2-core
 * host: a 16 MB map (MAX_MAP_BYTES) decodes in 0.5–0.85 s; decoded at once that is how long the master's loop
 * waits, in chunks its longest wait was 29–36 ms in three runs (150 ms once, the first chunk).
 */
const CHUNK = 256 * 1024;

/** Per generated line (0-based): the index into `sources` and the lowest and highest 0-based original line. */
export class SourceLines {
  private constructor(private readonly source: Int32Array, private readonly first: Int32Array, private readonly last: Int32Array) {}

  /** From a map's `mappings`, at once; throws on text that is not VLQ (a broken map is no map). */
  static of(mappings: string): SourceLines {
    const d = new Decoder(mappings);
    d.run(mappings.length);
    return d.done();
  }

  /** The same, giving the event loop a turn every `chunk` characters: a bundle's map must not stall the master. */
  static async decode(mappings: string, turn: () => Promise<unknown>, chunk = CHUNK): Promise<SourceLines> {
    const d = new Decoder(mappings);
    while (!d.run(chunk)) await turn();
    return d.done();
  }

  /** @internal the decoder's result. */
  static from(source: Int32Array, first: Int32Array, last: Int32Array): SourceLines {
    return new SourceLines(source, first, last);
  }

  /** The source index and 0-based original line of generated line `line0` (0-based), when it has one. */
  at(line0: number): { source: number; line: number } | undefined {
    const s = this.source[line0];
    if (s === undefined || s < 0 || this.last[line0]! - this.first[line0]! > MAX_LINE_SPAN) return undefined;
    return { source: s, line: this.first[line0]! };
  }

  /** Bytes held: maps are bounded by what they cost. */
  get bytes(): number {
    return this.source.byteLength * 3;
  }
}

/** The VLQ state machine: resumable, so a long `mappings` can be decoded in chunks. */
class Decoder {
  // Grown as lines are met (counting them first would be one more pass over the text, not in chunks).
  private source = new Int32Array(1024).fill(NONE);
  private first = new Int32Array(1024);
  private last = new Int32Array(1024);
  // Fields 2–4 of a segment are relative to the previous segment's, across lines (field 1 restarts per line).
  private readonly acc = [0, 0, 0, 0, 0];
  private i = 0;
  private gen = 0;
  private field = 0;
  private value = 0;
  private shift = 0;

  constructor(private readonly text: string) {}

  /** Decodes up to `count` more characters; true when the text is all decoded. */
  run(count: number): boolean {
    const text = this.text;
    const acc = this.acc;
    const end = Math.min(text.length, this.i + count);
    for (; this.i < end; this.i++) {
      const c = text.charCodeAt(this.i);
      if (c === 59 /* ; */ || c === 44 /* , */) {
        if (this.shift !== 0) throw new Error('truncated VLQ');
        this.endSegment();
        if (c === 59) { this.gen++; acc[0] = 0; }
        continue;
      }
      const d = c < 128 ? B64[c]! : -1;
      if (d < 0) throw new Error(`not base64 VLQ: ${JSON.stringify(text[this.i])}`);
      this.value += (d & 31) * 2 ** this.shift;
      if (d & 32) { this.shift += 5; if (this.shift > 30) throw new Error('VLQ too long'); continue; }
      const v = this.value;
      const n = v % 2 === 1 ? -(v - 1) / 2 : v / 2;
      if (this.field < 5) acc[this.field] = acc[this.field]! + n;
      this.field++;
      this.value = 0;
      this.shift = 0;
    }
    return this.i >= text.length;
  }

  done(): SourceLines {
    if (this.shift !== 0) throw new Error('truncated VLQ');
    this.endSegment();
    const n = this.gen + 1;
    return SourceLines.from(this.source.slice(0, n), this.first.slice(0, n), this.last.slice(0, n));
  }

  private endSegment(): void {
    // A segment of 1 field maps to nothing; of 4 or 5, to (source, line, column[, name]).
    if (this.field >= 4) {
      const g = this.gen;
      if (g >= this.source.length) this.grow(g);
      const s = this.acc[1]!;
      const l = this.acc[2]!;
      if (this.source[g] === NONE) {
        this.source[g] = s;
        this.first[g] = l;
        this.last[g] = l;
      } else if (this.source[g] !== s) {
        this.source[g] = MIXED;
      } else {
        if (l < this.first[g]!) this.first[g] = l;
        if (l > this.last[g]!) this.last[g] = l;
      }
    }
    this.field = 0;
  }

  private grow(g: number): void {
    const size = Math.max(g + 1, this.source.length * 2);
    const source = new Int32Array(size).fill(NONE);
    source.set(this.source);
    const first = new Int32Array(size);
    first.set(this.first);
    const last = new Int32Array(size);
    last.set(this.last);
    this.source = source;
    this.first = first;
    this.last = last;
  }
}
