// Pure logic of issue 24: the line splitter that bounds child output, and fork pacing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineSplitter } from '../src/master/output';
import { forksThisTick, MAX_BOOTING, MAX_FORKS_PER_TICK } from '../src/master/fork-pacing';

function split(chunks: string[], max: number): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const s = new LineSplitter((line, dropped) => out.push([line, dropped]), max);
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

test('lines split across chunks, \\r\\n, and a last line without a newline', () => {
  assert.deepEqual(split(['ab', 'c\nde\r\n', '\nf'], 100), [['abc', 0], ['de', 0], ['', 0], ['f', 0]]);
});

test('a line longer than the bound is cut, counting what was dropped, and memory stays bounded', () => {
  assert.deepEqual(split(['0123456789', 'abcdef\nok\n'], 4), [['0123', 12], ['ok', 0]]);
  const s = new LineSplitter(() => undefined, 8);
  for (let i = 0; i < 1000; i++) s.push('x'.repeat(1000));
  assert.ok(((s as unknown as { buf: string }).buf).length <= 8);
});

test('forks are paced: never more than the wanted, the booting room, or the per-tick cap', () => {
  assert.equal(forksThisTick(1024, 0, 0), Math.min(MAX_FORKS_PER_TICK, MAX_BOOTING));
  assert.equal(forksThisTick(3, 2, 0), 1);
  assert.equal(forksThisTick(1024, 10, MAX_BOOTING), 0);
  assert.equal(forksThisTick(2, 4, 0), 0);
});
