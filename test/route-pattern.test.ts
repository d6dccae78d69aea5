// Pure logic: route patterns (slow_exempt) and the per-route count a dump gives past its listing cap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tallyRoutes } from '../src/dump/route';
import { compileRoutePatterns, pathOf, routePatternProblem } from '../src/util/route-pattern';

test('route patterns: * within a segment, ** across, the query ignored', () => {
  const re = compileRoutePatterns(['/poll', '/events/*', '/stream/**', '/*/ws'])!;
  const m = (url: string) => re.test(pathOf(url));
  assert.ok(m('/poll') && m('/poll?since=3'));
  assert.ok(!m('/poll/1') && !m('/polls'));
  assert.ok(m('/events/42') && !m('/events/42/x') && !m('/events'));
  assert.ok(m('/stream') && m('/stream/a/b/c') && !m('/streams'));
  assert.ok(m('/chat/ws') && !m('/a/b/ws'));
  assert.equal(compileRoutePatterns([]), undefined);
  assert.ok(compileRoutePatterns(['/a.b'])!.test('/a.b') && !compileRoutePatterns(['/a.b'])!.test('/axb'), 'dots are literal');
});

test('bad route patterns are named', () => {
  assert.match(routePatternProblem('events')!, /starts with \/ \(e\.g\. \/events\)/);
  assert.match(routePatternProblem('')!, /empty/);
  assert.match(routePatternProblem('/a b')!, /no spaces/);
  assert.match(routePatternProblem('/a?x=1')!, /no spaces, \? or #/);
  assert.match(routePatternProblem('/a/***')!, /not \*\*\*/);
  assert.match(routePatternProblem('/a**')!, /whole segment/);
  assert.equal(routePatternProblem('/stream/**'), undefined);
});

test('tallyRoutes: most first, the tail folded into (other), requests without a record counted', () => {
  const urls = [...Array(4_800).fill('/poll?x=1'), ...Array(12).fill('/')];
  assert.deepEqual(tallyRoutes(urls, 4_812), { count: 4_812, byRoute: [{ route: '/poll', count: 4_800 }, { route: '/', count: 12 }] });
  const many = Array.from({ length: 15 }, (_, i) => `/r${i}`);
  const t = tallyRoutes(many, 20);
  assert.equal(t.count, 20);
  assert.equal(t.byRoute.length, 12);
  assert.deepEqual(t.byRoute.slice(-2), [{ route: '(other)', count: 5 }, { route: '(no record)', count: 5 }]);
});
