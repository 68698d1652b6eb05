// npm run bench:modbus — the Modbus read path under load (issue 4, point 7).
//   (a) 1,000 simulated devices (20 endpoints x 50 unit ids, 60 registers each) polled at 1 Hz
//       by the gateway's PollerSet with decoding, gauges, self-metrics and OTLP export;
//   (b) at the same time, a bare modbus-serial loop polling the same devices at the same rate;
//   (c) then each at full speed against the same simulators: requests/s, gateway vs bare;
//   (d) 5,000 devices (100 endpoints x 50 unit ids, 60 registers each) at 1 Hz, the gateway alone,
//       the simulators split over several processes of their own (issue 15: cycle p99, overruns,
//       CPU against the 1,000-device run's, RSS).
// Every party runs in its own process (simulators included), so CPU % and RSS are its own.
// Options: --duration=S (default 60) --fast=S (default 10) --endpoints=N --units=N --interval=MS --warmup=S
//          --endpoints-5k=N (default 100) --units-5k=N (default 50) --duration-5k=S (default --duration)
//          --sim-procs-5k=N (simulator processes for (d), default 4) --skip-5k (no (d), no *_5k keys)
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

    // (d) The large site, after the 1,000-device simulators are gone (their CPU is not in its way).
    let large: Record<string, unknown> = {};
    if (!process.argv.includes('--skip-5k')) {
      const lEndpoints = arg('endpoints-5k', 100);
      const lUnits = arg('units-5k', 50);
      const lDuration = arg('duration-5k', durationS);
      const procs = Math.min(lEndpoints, Math.round(arg('sim-procs-5k', 4)));
      const lDevices = lEndpoints * lUnits;
      const sims: Child[] = [];
      for (let i = 0; i < procs; i++) {
        const first = Math.floor((lEndpoints * i) / procs);
        const c = spawnRole('sim');
        c.send({ type: 'run', params: { endpoints: Math.floor((lEndpoints * (i + 1)) / procs) - first, units: lUnits, firstEndpoint: first } });
        sims.push(c);
      }
      const readies = await Promise.all(sims.map((c) => c.next('ready', 120_000)));
      const lPorts = readies.flatMap((r) => r['ports'] as number[]);
      console.log(`(d) ${lEndpoints} endpoints x ${lUnits} units = ${lDevices} devices every ${intervalMs} ms for ${lDuration} s (after ${warmupS} s warm-up), ` +
        `the gateway alone, simulators in ${procs} processes`);
      const gl = spawnRole('gateway');
      // A site this size raises telemetry.cardinality_limit above its device count (docs/modbus.md).
      gl.send({ type: 'run', params: { ports: lPorts, units: lUnits, intervalMs, warmupS, durationS: lDuration, sinkUrl: readies[0]?.['sinkUrl'], cardinalityLimit: Math.max(2000, 2 * lDevices) } });
      const l = await result(gl, (warmupS + lDuration + 120) * 1000);
      await gl.stop();
      for (const c of sims) c.send({ type: 'stop' });
      await Promise.all(sims.map((c) => c.next('sim-stats', 10_000).catch(() => undefined)));
      await Promise.all(sims.map((c) => c.stop()));
      console.log(`  gateway: ${fmt(l['polls_per_s'])} polls/s, cycle p50 ${fmt(l['cycle_p50_ms'], 2)} ms p99 ${fmt(l['cycle_p99_ms'], 2)} ms max ${fmt(l['cycle_max_ms'], 1)} ms, ` +
        `overruns ${String(l['overruns'])}, up ${String(l['up'])}/${lDevices}, errors ${String(l['errors'])}, values ok ${String(l['values_ok'])}, ` +
        `CPU ${fmt(l['cpu_pct'], 2)} % of one core (${fmt((l['cpu_pct'] as number) / Math.max(1e-9, cpu), 2)}x the 1,000-device run), RSS ${fmt(l['rss_mb'])} MB (V8 heap ${fmt(l['heap_mb'])} MB)`);
      large = {
        devices_5k: lDevices,
        duration_5k_s: lDuration,
        polls_per_s_5k: round(l['polls_per_s'] as number, 1),
        cycle_p50_ms_5k: round(l['cycle_p50_ms'] as number, 3),
        cycle_p99_ms_5k: round(l['cycle_p99_ms'] as number, 3),
        overruns_5k: l['overruns'],
        devices_up_5k: l['up'],
        values_ok_5k: l['values_ok'],
        cpu_pct_5k: round(l['cpu_pct'] as number),
        cpu_vs_1k: round(cpu > 0 ? (l['cpu_pct'] as number) / cpu : 0),
        rss_mb_5k: round(l['rss_mb'] as number, 1),
        heap_mb_5k: round(l['heap_mb'] as number, 1),
      };
    }
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
      heap_mb: round(g['heap_mb'] as number, 1),
      bare_rss_mb: round(b['rss_mb'] as number, 1),
      read_path_rps: round(gfr.requests_per_s, 0),
      bare_rps: round(bfr.requests_per_s, 0),
      read_path_ratio: round(gfr.requests_per_s / Math.max(1, bfr.requests_per_s)),
      otlp_exports: simStats['exports'],
      gateway_node_flags: gwFlags.join(' '),
      ...large,
    };
    // Issue 15's goals, judged on this run (ratios within one run: the machine is shared).
    const goals = { cpu_ratio_vs_bare_max: 1.0, cycle_p99_ms_5k_max: 1000, overruns_5k_max: 0, cpu_vs_1k_max: 5.5, rss_mb_5k_max: 200 };
    const met: Record<string, boolean> = { cpu_ratio_vs_bare: summary.cpu_ratio_vs_bare <= goals.cpu_ratio_vs_bare_max };
    if ('devices_5k' in large) {
      met['cycle_p99_ms_5k'] = (large['cycle_p99_ms_5k'] as number) < goals.cycle_p99_ms_5k_max;
      met['overruns_5k'] = large['overruns_5k'] === goals.overruns_5k_max;
      met['cpu_pct_5k'] = (large['cpu_vs_1k'] as number) <= goals.cpu_vs_1k_max;
      met['rss_mb_5k'] = (large['rss_mb_5k'] as number) <= goals.rss_mb_5k_max;
    }
    console.log(JSON.stringify({ ...summary, goals, goals_met: met, goal_met: Object.values(met).every((x) => x) }));
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
