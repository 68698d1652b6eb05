import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { buildGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { StartupError } from '../../src/runtime/lifecycle.js';
import type { StatusReport } from '../../src/status/status-model.js';
import { minimalSite } from './site-fixture.js';

describe('composition root', () => {
  const gateways: Gateway[] = [];
  const servers: http.Server[] = [];
  afterEach(async () => {
    for (const g of gateways.splice(0)) await g.stop();
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('starts its parts in order, serves status, and stops in reverse', async () => {
    const gw = buildGateway(minimalSite(), { env: {}, logger: silentLogger(), statusPort: 0 });
    gateways.push(gw);
    await gw.start();
    expect(gw.lifecycle.health().map((h) => `${h.name}:${h.state}`)).toEqual(expect.arrayContaining(['telemetry:running', 'status:running', 'grid-state:running']));
    expect(gw.lifecycle.health()[0]?.name).toBe('telemetry');
    const url = gw.statusUrl();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const st = (await (await fetch(`${url}status`)).json()) as StatusReport;
    expect(st.site.id).toBe('test-site');
    expect(st.ready).toBe(true);
    expect(st.grid).toMatchObject({ nominal_frequency_hz: 50 });
    expect(st.exporter).toMatchObject({ enabled: false, healthy: null });
    const report = await gw.stop();
    expect(report.timedOut).toEqual([]);
    expect(gw.lifecycle.health().every((h) => h.state === 'stopped')).toBe(true);
    await expect(fetch(`${url}healthz`)).rejects.toThrow();
  });

  it('a taken status port is a start-up failure naming the part, and nothing is left running', async () => {
    const blocker = http.createServer();
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const gw = buildGateway(minimalSite(), { env: {}, logger: silentLogger(), statusPort: port });
    gateways.push(gw);
    const err = await gw.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toBe(`status failed to start: GW_STATUS_LISTEN: status endpoint cannot listen on 127.0.0.1:${port}: EADDRINUSE (set status.port in the site file or --status-port)`);
    expect(gw.lifecycle.health().find((h) => h.name === 'telemetry')?.state).toBe('stopped');
  });
});
