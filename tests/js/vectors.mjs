// Reads the shared known-answer days (lottery/tests/vectors/, byte copies of shared/vectors/).
import { readFileSync, readdirSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// Node 18 (Debian's) has WebCrypto but not as a global, as browsers and Node 20 have it.
if (!globalThis.crypto) globalThis.crypto = webcrypto;

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const VECTORS = path.join(ROOT, 'lottery/tests/vectors');
export const FIXTURES = path.join(ROOT, 'tests/js/fixtures');

/** The bytes of a vector file as a Uint8Array. */
export const vectorFile = (day, name) => new Uint8Array(readFileSync(path.join(VECTORS, day, name)));
export const vectorText = (day, name) => readFileSync(path.join(VECTORS, day, name), 'utf8');
export const lines = (text) => text.split('\n').slice(0, -1);

/** The proof fixtures of a day: [{ ticket, proof }] (made by fixtures/make.sh with `notary proof`). */
export function proofFixtures(day) {
  return readdirSync(FIXTURES).filter((f) => f.startsWith(`${day}-`) && f.endsWith('.json')).map((f) => ({
    ticket: f.slice(day.length + 1, -'.json'.length),
    proof: JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8')),
  }));
}
