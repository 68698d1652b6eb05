// npm run bench:modbus — the Modbus read path under load (issue 4, point 7).
//   (a) 1,000 simulated devices (20 endpoints x 50 unit ids, 60 registers each) polled at 1 Hz
//       by the gateway's PollerSet with decoding, gauges, self-metrics and OTLP export;
//   (b) at the same time, a bare modbus-serial loop polling the same devices at the same rate;
//   (c) then each at full speed against the same simulators: requests/s, gateway vs bare.
// Every party runs in its own process (simulators included), so CPU % and RSS are its own.
// Options: --duration=S (default 60) --fast=S (default 10) --endpoints=N --units=N --interval=MS --warmup=S
//          --gateway-node-flags=F1,F2 (V8 flags for the gateway processes only; default the deployed
//          ones from lib/gateway-node-flags.ts, empty for none)
// The last line of output is one JSON object (the README and the closing note quote it).
import { fileURLToPath } from 'node:url';
import { onParent, startChild, toParent, type Child, type Msg } from './lib/child.js';
import { GATEWAY_NODE_FLAGS } from './lib/gateway-node-flags.js';

function arg(name: string, dflt: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = hit === undefined ? NaN : Number(hit.slice(name.length + 3));
  return Number.isFinite(v) && v > 0 ? v : dflt;
}
const role = process.argv.find((a) => a.startsWith('--role='))?.slice(7);

async function child(): Promise<void> {
  // A child waits for its parameters, runs, reports, and exits when told to stop.
  // Each process loads only its own side (the bare client never loads the OpenTelemetry SDK).
  // The listener is registered at once, so the parent's first message cannot arrive unheard.
  const gateway = role === 'gateway' || role === 'gateway-fast';
  const run = async (p: never): Promise<Msg | void> => {
    if (gateway) {
      const g = await import('./lib/roles-gateway.js');
      return role === 'gateway' ? g.runGateway(p) : g.runGatewayFast(p);
    }
    const o = await import('./lib/roles-sim-bare.js');
    if (role === 'sim') return o.runSim(p);
    if (role === 'bare') return o.runBare(p);
    if (role === 'bare-fast') return o.runBareFast(p);
    throw new Error(`unknown role ${String(role)}`);
  };
  onParent('run', (m) => {
    const work = run(m['params'] as never);
    work.then((r) => { if (r) toParent(r); }, (e: unknown) => {
      toParent({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    });
  });
  if (role !== 'sim') onParent('stop', () => process.exit(0));
}

const fmt = (x: unknown, d = 1): string => (typeof x === 'number' ? x.toFixed(d) : String(x));

async function result(c: Child, timeoutMs: number): Promise<Msg> {
  const r = await Promise.race([c.next('result', timeoutMs), c.next('error', timeoutMs).then((e) => { throw new Error(String(e['message'])); })]);
  return r;
}

async function main(): Promise<void> {
  const endpoints = arg('endpoints', 20);
  const units = arg('units', 50);
  const intervalMs = arg('interval', 1000);
  const durationS = arg('duration', 60);
  const fastS = arg('fast', Math.min(10, durationS));
  const warmupS = arg('warmup', Math.min(3, Math.max(1, durationS / 4)));
  const script = fileURLToPath(import.meta.url);
  const children: Child[] = [];
  // --gateway-node-flags=--max-old-space-size=64 (comma-separated): V8 flags for the gateway
  // processes only, to try other heap settings; default: the deployed ones (GATEWAY_NODE_FLAGS),
  // `--gateway-node-flags=` (empty) for none.
  const gwFlags = process.argv.find((a) => a.startsWith('--gateway-node-flags='))?.slice(21).split(',').filter((f) => f !== '') ?? [...GATEWAY_NODE_FLAGS];
  const spawnRole = (r: string): Child => {
    const c = startChild(script, r, r.startsWith('gateway') ? gwFlags : []);
    children.push(c);
    return c;
  };
  try {
    const sim = spawnRole('sim');
    sim.send({ type: 'run', params: { endpoints, units } });
    const ready = await sim.next('ready', 60_000);
    const ports = ready['ports'] as number[];
    const sinkUrl = ready['sinkUrl'] as string;
    const devices = endpoints * units;
    console.log(`simulators: ${endpoints} endpoints x ${units} units = ${devices} devices, 60 registers each`);

    console.log(`(a)+(b) gateway and bare modbus-serial, each polling every device every ${intervalMs} ms for ${durationS} s (after ${warmupS} s warm-up)`);
    const gw = spawnRole('gateway');
    const bare = spawnRole('bare');
    const rateParams = { ports, units, intervalMs, warmupS, durationS };
    gw.send({ type: 'run', params: { ...rateParams, sinkUrl } });
    bare.send({ type: 'run', params: rateParams });
    const limit = (warmupS + durationS + 60) * 1000;
    const [g, b] = await Promise.all([result(gw, limit), result(bare, limit)]);
    console.log(`  gateway: ${fmt(g['polls_per_s'])} polls/s, cycle p50 ${fmt(g['cycle_p50_ms'], 2)} ms p99 ${fmt(g['cycle_p99_ms'], 2)} ms max ${fmt(g['cycle_max_ms'], 1)} ms, ` +
      `overruns ${String(g['overruns'])}, up ${String(g['up'])}/${devices}, errors ${String(g['errors'])}, values ok ${String(g['values_ok'])}, ` +
      `CPU ${fmt(g['cpu_pct'], 2)} % of one core, RSS ${fmt(g['rss_mb'])} MB`);
    console.log(`  bare:    ${fmt(b['polls_per_s'])} polls/s, errors ${String(b['errors'])}, CPU ${fmt(b['cpu_pct'], 2)} % of one core, RSS ${fmt(b['rss_mb'])} MB`);
    await Promise.all([gw.stop(), bare.stop()]);

    // Alternating slices (gateway, bare, gateway, bare) so a change in the shared machine's load
    // during the run falls on both sides alike.
    console.log(`(c) full speed for ${fastS} s each, in alternating slices, one request in flight per connection`);
    const slices = fastS >= 4 ? 2 : 1;
    const fast = { g: { n: 0, s: 0, cpu: 0 }, b: { n: 0, s: 0, cpu: 0 } };
    for (let i = 0; i < slices; i++) {
      for (const side of ['g', 'b'] as const) {
        const c = spawnRole(side === 'g' ? 'gateway-fast' : 'bare-fast');
        c.send({ type: 'run', params: { ports, units, seconds: fastS / slices, sinkUrl } });
        const r = await result(c, (fastS + 60) * 1000);
        await c.stop();
        const secs = (r['requests'] as number) / Math.max(1e-9, r['requests_per_s'] as number);
        fast[side].n += r['requests'] as number;
        fast[side].s += secs;
        fast[side].cpu += (r['cpu_pct'] as number) * secs;
      }
    }
    const gfr = { requests_per_s: fast.g.n / fast.g.s, cpu_pct: fast.g.cpu / fast.g.s };
    const bfr = { requests_per_s: fast.b.n / fast.b.s, cpu_pct: fast.b.cpu / fast.b.s };
    console.log(`  gateway read path: ${fmt(gfr.requests_per_s, 0)} requests/s (CPU ${fmt(gfr.cpu_pct)} %)`);
    console.log(`  bare modbus-serial: ${fmt(bfr.requests_per_s, 0)} requests/s (CPU ${fmt(bfr.cpu_pct)} %)`);

    sim.send({ type: 'stop' });
    const simStats = await sim.next('sim-stats', 10_000).catch(() => ({ type: 'sim-stats' }) as Msg);
    await sim.stop();
    const cpu = g['cpu_pct'] as number;
    const bareCpu = b['cpu_pct'] as number;
    const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
    const summary = {
      devices,
      interval_ms: intervalMs,
      duration_s: durationS,
      polls_per_s: round(g['polls_per_s'] as number, 1),
      cycle_p50_ms: round(g['cycle_p50_ms'] as number, 3),
      cycle_p99_ms: round(g['cycle_p99_ms'] as number, 3),
      overruns: g['overruns'],
      devices_up: g['up'],
      values_ok: g['values_ok'],
      cpu_pct: round(cpu),
      bare_polls_per_s: round(b['polls_per_s'] as number, 1),
      bare_cpu_pct: round(bareCpu),
      cpu_ratio_vs_bare: round(bareCpu > 0 ? cpu / bareCpu : 0),
      rss_mb: round(g['rss_mb'] as number, 1),
      bare_rss_mb: round(b['rss_mb'] as number, 1),
      read_path_rps: round(gfr.requests_per_s, 0),
      bare_rps: round(bfr.requests_per_s, 0),
      read_path_ratio: round(gfr.requests_per_s / Math.max(1, bfr.requests_per_s)),
      otlp_exports: simStats['exports'],
      gateway_node_flags: gwFlags.join(' '),
    };
    console.log(JSON.stringify(summary));
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

if (role !== undefined) {
  void child();
} else {
  main().then(() => process.exit(0), (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  });
}
