import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { Lifecycle, StartupError, type Part } from '../../src/runtime/lifecycle.js';
import { createLogger, silentLogger } from '../../src/runtime/logger.js';
import { systemClock } from '../../src/runtime/clock.js';
import { EventEmitter } from 'node:events';
import { DUPLICATE_WINDOW_MS, handleShutdownSignals } from '../../src/runtime/signals.js';

function recorder(events: string[], name: string, opts: { failStart?: boolean; hangStop?: boolean; failStop?: boolean } = {}): Part {
  return {
    name,
    start: async () => {
      events.push(`start ${name}`);
      if (opts.failStart) throw Object.assign(new Error('port 15020 in use'), { code: 'EADDRINUSE' });
    },
    stop: async () => {
      events.push(`stop ${name}`);
      if (opts.hangStop) await new Promise(() => undefined);
      if (opts.failStop) throw new Error('boom on stop');
    },
  };
}

describe('Lifecycle', () => {
  it('starts parts in order and stops them in reverse', async () => {
    const events: string[] = [];
    const lc = new Lifecycle(['telemetry', 'meters', 'modbus'].map((n) => recorder(events, n)), { logger: silentLogger(), clock: systemClock });
    await lc.start();
    expect(lc.ready()).toBe(true);
    expect(lc.health().map((h) => h.state)).toEqual(['running', 'running', 'running']);
    const report = await lc.stop();
    expect(events).toEqual(['start telemetry', 'start meters', 'start modbus', 'stop modbus', 'stop meters', 'stop telemetry']);
    expect(report.timedOut).toEqual([]);
    expect(lc.ready()).toBe(false);
    // Idempotent: a second signal's stop() is the same stop.
    expect(await lc.stop()).toBe(report);
  });

  it('a start-up failure stops what started, in reverse, and names the part and cause in one line', async () => {
    const events: string[] = [];
    const lc = new Lifecycle([recorder(events, 'telemetry'), recorder(events, 'modbus', { failStart: true }), recorder(events, 'dr')], {
      logger: silentLogger(), clock: systemClock,
    });
    const err = await lc.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as StartupError).message).toBe('modbus failed to start: EADDRINUSE: port 15020 in use');
    expect((err as StartupError).message).not.toContain('\n');
    expect(events).toEqual(['start telemetry', 'start modbus', 'stop telemetry']);
    expect(lc.health().find((h) => h.name === 'modbus')?.state).toBe('failed');
    expect(lc.health().find((h) => h.name === 'dr')?.state).toBe('idle');
  });

  it('isolates a part that fails at run time: it is stopped alone, the others keep running', async () => {
    const events: string[] = [];
    const lc = new Lifecycle(['a', 'b', 'c'].map((n) => recorder(events, n)), { logger: silentLogger(), clock: systemClock });
    await lc.start();
    const guarded = lc.guard('b', () => { throw new Error('socket exploded'); });
    guarded();
    await new Promise((r) => setImmediate(r));
    expect(events).toContain('stop b');
    const h = lc.health();
    expect(h.map((x) => x.state)).toEqual(['running', 'failed', 'running']);
    expect(h[1]?.error).toBe('socket exploded');
    expect(lc.ready()).toBe(false);
    events.length = 0;
    await lc.stop();
    // The failed part is not stopped twice.
    expect(events).toEqual(['stop c', 'stop a']);
  });

  it('guard reports a rejected promise too', async () => {
    const lc = new Lifecycle([recorder([], 'x')], { logger: silentLogger(), clock: systemClock });
    await lc.start();
    lc.guard('x', async () => { throw new Error('late failure'); })();
    await new Promise((r) => setTimeout(r, 10));
    expect(lc.health()[0]?.state).toBe('failed');
    await lc.stop();
  });

  it('bounds the stop: a part that hangs is left behind and the rest still stop', async () => {
    const events: string[] = [];
    const lc = new Lifecycle([recorder(events, 'first'), recorder(events, 'hangs', { hangStop: true }), recorder(events, 'fails', { failStop: true })], {
      logger: silentLogger(), clock: systemClock, stopTimeoutMs: 300,
    });
    await lc.start();
    const t0 = Date.now();
    const report = await lc.stop();
    const took = Date.now() - t0;
    expect(report.timedOut).toEqual(['hangs']);
    expect(report.failed).toEqual([{ name: 'fails', error: 'boom on stop' }]);
    expect(events).toEqual(['start first', 'start hangs', 'start fails', 'stop fails', 'stop hangs', 'stop first']);
    expect(took).toBeLessThan(3000);
  });

  it('rejects two parts with the same name', () => {
    expect(() => new Lifecycle([recorder([], 'a'), recorder([], 'a')], { logger: silentLogger(), clock: systemClock })).toThrow(/two parts named "a"/);
  });

  it('logs start-up with the part names as JSON', async () => {
    const lines: string[] = [];
    const dest = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } });
    const lc = new Lifecycle([recorder([], 'telemetry')], { logger: createLogger({ destination: dest, env: {} }), clock: systemClock });
    await lc.start();
    await lc.stop();
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; part?: string; component?: string });
    expect(parsed.find((p) => p.msg === 'part started')).toMatchObject({ part: 'telemetry', component: 'lifecycle' });
  });
});

describe('shutdown signals', () => {
  it('the first signal starts the stop, the second forces', () => {
    const proc = new EventEmitter();
    const seen: string[] = [];
    const off = handleShutdownSignals({
      proc: proc as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
      onSignal: (s) => seen.push(`stop ${s}`),
      onSecondSignal: (s) => seen.push(`force ${s}`),
    });
    proc.emit('SIGTERM');
    proc.emit('SIGINT');
    expect(seen).toEqual(['stop SIGTERM', 'force SIGINT']);
    off();
    expect(proc.listenerCount('SIGTERM')).toBe(0);
  });

  it('the same signal again at once is one Ctrl-C delivered twice (terminal and npm run), not a second', () => {
    const proc = new EventEmitter();
    const seen: string[] = [];
    let t = 1000;
    const off = handleShutdownSignals({
      proc: proc as unknown as Pick<NodeJS.Process, 'on' | 'off'>, now: () => t,
      onSignal: (s) => seen.push(`stop ${s}`),
      onSecondSignal: (s) => seen.push(`force ${s}`),
    });
    proc.emit('SIGINT');
    t += 5;
    proc.emit('SIGINT');
    expect(seen).toEqual(['stop SIGINT']);
    t += DUPLICATE_WINDOW_MS;
    proc.emit('SIGINT');
    expect(seen).toEqual(['stop SIGINT', 'force SIGINT']);
    off();
  });
});
