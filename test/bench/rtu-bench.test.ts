// Smoke test of `npm run bench:rtu`: one second on a socat pseudo-terminal, through the built
// script, checking the JSON contract of its last line and that the gateway kept the line's silence.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hasPeer } from '../peers.js';

const SCRIPT = fileURLToPath(new URL('../../dist/bench/rtu.js', import.meta.url));
const KEYS = ['baud', 'theoretical_rps', 'gateway_rps', 'ratio_vs_theoretical', 'silence_ms', 'min_silence_ms', 'errors'];

describe.skipIf(!hasPeer('socat'))('bench:rtu smoke', () => {
  it('ends with one JSON line: the theoretical rate of the line, the rate reached, the silence kept', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [SCRIPT, '--duration=1', '--units=2'], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const json = JSON.parse(out.trim().split('\n').at(-1) ?? '') as Record<string, number>;
    for (const k of KEYS) expect(json, k).toHaveProperty(k);
    // 8-byte requests, 25-byte answers, 11-bit characters at 19200 baud, two silences of 3.5 characters.
    expect(json['theoretical_rps']).toBeCloseTo(1000 / (33 * 11 / 19.2 + 2 * 3.5 * 11 / 19.2), 0);
    expect(json['errors']).toBe(0);
    expect(json['gateway_rps']).toBeGreaterThan(10);
    expect(json['min_silence_ms']).toBeGreaterThanOrEqual((json['silence_ms'] ?? 0) - 0.1);
  }, 70_000);
});
