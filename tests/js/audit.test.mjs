// The page's audit reader and chart model (static/js/audit.js) on the known-answer audits of
// lottery/tests/vectors/audit-v1 (computed by audit_reference.py and the reference alike), and
// on a skewed day's audit (the DV-2012 failure: winners from the first hours) as it is flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { beijingHour, chartModel, parseAudit } from '../../static/js/audit.js';
import { vectorText } from './vectors.mjs';

const contested = vectorText('audit-v1', 'v1-contested.txt');
const small = vectorText('audit-v1', 'v1-small.txt');

test('the worked example of SPEC §13.4 reads as the spec says', () => {
  const a = parseAudit(contested);
  assert.equal(a.entrants, 600);
  assert.equal(a.winners, 301);
  assert.deepEqual(a.allocation, { pools: 42, deviatingPools: 0, groups: 6, deviatingGroups: 0 });
  assert.equal(a.hour.length, 22);
  assert.deepEqual(a.hour[0], { label: '2025-11-23T12Z', first: '2025-11-23T12Z', end: '2025-11-23T13Z', entrants: 22, winners: 14, expected: 12.796 });
  assert.deepEqual(a.tests.hour, { q: 20.956, df: 21, p: 0.462, text: '4.62e-1' });
  assert.deepEqual(a.tests['hour-trend'], { q: 0.11, df: 1, p: 0.74, text: '7.40e-1' });
  assert.deepEqual(a.flagged, []);
  const model = chartModel(a);
  assert.deepEqual(model.map((p) => p.key), ['hour', 'flexible', 'district', 'product']);
  assert.ok(model.every((p) => !p.flagged));
  // A fair day: no district or product off its permitted count, no bin far from its expectation.
  assert.ok(model.every((p) => p.bins.every((b) => !b.far)), JSON.stringify(model));
  assert.equal(model[0].bins[0].label, '11-23 20时');
  const s = parseAudit(small);
  assert.equal(s.tests.hour.df, 0);
  assert.equal(s.tests.hour.text, '1.00e0');
});

test('a skewed day is drawn flagged: the tests, the far bins and the allocation', () => {
  // The contested day's hour bins with the winners moved to the first hours, as DV-2012's.
  const skewed = contested
    .replace(/^hour:2025-11-23T12Z\/2025-11-23T13Z,22,14,/m, 'hour:2025-11-23T12Z/2025-11-23T13Z,22,22,')
    .replace(/^hour:2025-11-24T11Z\/2025-11-24T13Z,27,15,/m, 'hour:2025-11-24T11Z/2025-11-24T13Z,27,0,')
    .replace(/^district:D00,165,57,57$/m, 'district:D00,165,60,57')
    .replace('allocation:42,0,6,0', 'allocation:42,1,6,0')
    .replace('test:hour-trend:0.110,1,7.40e-1', 'test:hour-trend:61.000,1,5.62e-15')
    .replace('verdict:pass', 'verdict:flagged:allocation,hour-trend');
  const a = parseAudit(skewed);
  assert.deepEqual(a.flagged, ['allocation', 'hour-trend']);
  const [hour, flexible, district, product] = chartModel(a);
  assert.ok(hour.flagged && !flexible.flagged);
  assert.ok(hour.tests.find((t) => t.name === 'hour-trend').flagged);
  assert.ok(!hour.tests.find((t) => t.name === 'hour').flagged);
  assert.deepEqual(hour.bins.filter((b) => b.far).map((b) => b.first), ['2025-11-24T11Z']);
  assert.ok(district.flagged && product.flagged, 'the allocation flags both stock-fixed charts');
  assert.deepEqual(district.bins.filter((b) => b.far).map((b) => b.label), ['D00']);
});

test('a malformed audit is refused naming its line', () => {
  assert.throws(() => parseAudit(contested.replace('maskdraw-audit-v1', 'maskdraw-audit-v2')), /line 1/);
  assert.throws(() => parseAudit(contested.replace('bound:1e-6', 'bound:1e-3')), /line 4/);
  assert.throws(() => parseAudit(contested.replace('verdict:pass', 'verdict:maybe')), /verdict/);
  assert.throws(() => parseAudit(`${contested}more\n`), /extra line/);
  assert.throws(() => parseAudit(contested.slice(0, -1)), /LF/);
  assert.equal(beijingHour('2025-11-23T16Z'), '11-24 00时');
});
