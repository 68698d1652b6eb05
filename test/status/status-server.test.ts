import { afterEach, describe, expect, it } from 'vitest';
import { INLINE_VALUES_MAX } from '../../src/status/status-page.js';
import { StatusServer } from '../../src/status/status-server.js';
import { silentLogger } from '../../src/runtime/logger.js';
import type { StatusReport } from '../../src/status/status-model.js';
import { sampleContext, sampleProviders } from './fixture.js';

describe('status server', () => {
  const servers: StatusServer[] = [];
  afterEach(async () => { for (const s of servers.splice(0)) await s.stop(); });

  async function serve(ctx = sampleContext(sampleProviders(Date.now()))): Promise<StatusServer> {
    const s = new StatusServer({ host: '127.0.0.1', port: 0, context: ctx, logger: silentLogger() });
    servers.push(s);
    await s.start();
    return s;
  }

  it('serves /healthz, /readyz and /status JSON with every section', async () => {
    const s = await serve();
    expect(s.port).toBeGreaterThan(0);
    const h = await fetch(`${s.url}healthz`);
    expect(h.status).toBe(200);
    expect((await fetch(`${s.url}readyz`)).status).toBe(200);
    const r = await fetch(`${s.url}status`);
    expect(r.headers.get('content-type')).toContain('application/json');
    const st = (await r.json()) as StatusReport;
    expect(st.site.id).toBe('demo-substation');
    expect(st.absent).toEqual([]);
    expect(Array.isArray(st.devices) && st.devices.map((d) => d.id)).toEqual(['inv-east-1', 'bms-1', 'load-ctl-north']);
    expect(st.meters).toMatchObject({ dropped_by_reason: { malformed_json: 40 } });
  });

  it('shows missing parts as absent (null), not zero, and a throwing accessor as an error', async () => {
    const ctx = sampleContext({
      devices: () => [],
      grid: () => { throw new Error('grid snapshot broken'); },
    }, [{ name: 'modbus', state: 'failed', error: 'socket exploded', since_ms: 0 }]);
    const s = await serve(ctx);
    const st = (await (await fetch(`${s.url}status`)).json()) as StatusReport;
    expect(st.absent).toEqual(['meters', 'alerts', 'demand_response', 'exporter', 'delivery']);
    expect(st.meters).toBeNull();
    expect(st.grid).toEqual({ error: 'grid snapshot broken' });
    const ready = await fetch(`${s.url}readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('modbus: failed (socket exploded)');
  });

  it('/readyz: 503 while every polled device is down (or not read yet), 200 once one is up', async () => {
    const providers = sampleProviders(Date.now());
    let devices = [
      { id: 'inv-1', up: false, last_good_age_s: null, last_error: 'MB_TIMEOUT: no answer' },
      { id: 'inv-2', up: false, last_good_age_s: 312 },
    ];
    const s = await serve(sampleContext({ ...providers, devices: () => devices }));
    const down = await fetch(`${s.url}readyz`);
    expect(down.status).toBe(503);
    expect(await down.text()).toBe('not ready\ndevices: none of 2 up (inv-1: MB_TIMEOUT: no answer, inv-2: down)\n');
    expect(((await (await fetch(`${s.url}status`)).json()) as StatusReport).ready).toBe(false);
    devices = [{ ...devices[0]!, up: true }, devices[1]!];
    expect((await fetch(`${s.url}readyz`)).status).toBe(200);
    expect(((await (await fetch(`${s.url}status`)).json()) as StatusReport).ready).toBe(true);
  });

  it('/readyz: a site that polls no device is ready when its parts run', async () => {
    const s = await serve(sampleContext({ ...sampleProviders(Date.now()), devices: () => [] }));
    expect((await fetch(`${s.url}readyz`)).status).toBe(200);
  });

  it('serves the page, refuses writes and answers 404 with a hint', async () => {
    const s = await serve();
    const page = await fetch(s.url);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('Demo substation');
    expect((await fetch(`${s.url}status`, { method: 'POST' })).status).toBe(405);
    const nf = await fetch(`${s.url}nope`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toContain('/status');
  });

  it('a taken port is one clear start-up error', async () => {
    const a = await serve();
    const b = new StatusServer({ host: '127.0.0.1', port: a.port, context: sampleContext({}), logger: silentLogger() });
    await expect(b.start()).rejects.toThrow(`status endpoint cannot listen on 127.0.0.1:${a.port}: EADDRINUSE`);
  });

  it('escapes a hostile site name in the page', async () => {
    const ctx = sampleContext({});
    ctx.site = { id: 'x', region: 'r', name: '<script>alert(1)</script>' };
    const s = await serve(ctx);
    const html = await (await fetch(s.url)).text();
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('&lt;script&gt;alert(1)');
  });

  it('serves /status/devices/<id> (404 for an unknown or unpolled device, 400 for a broken id) and escapes device values in the page', async () => {
    const providers = sampleProviders(Date.now());
    const hostile = { id: 'evil', up: true, last_good_age_s: 1, values: [{ id: 'model', value: '<img src=x onerror=alert(1)>', age_s: 1 }] };
    providers.devices = () => [hostile];
    providers.device = (id) => (id === 'evil device' ? { ...hostile, id, reads: [{ table: 'holding', address: 0, count: 1, age_s: 1, registers: [7] }] } : undefined);
    const s = await serve(sampleContext(providers));
    const d = await fetch(`${s.url}status/devices/evil%20device`);
    expect(d.status).toBe(200);
    expect(await d.json()).toMatchObject({ id: 'evil device', reads: [{ registers: [7] }] });
    const nf = await fetch(`${s.url}status/devices/nope`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toBe('no polled device "nope": the ids are in /status\n');
    expect((await fetch(`${s.url}status/devices/%E0%A4%A`)).status).toBe(400);
    const html = await (await fetch(s.url)).text();
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    const part = await fetch(`${s.url}page`);
    expect(part.status).toBe(200);
    expect(await part.text()).toMatch(/^<header>[\s\S]*&lt;img src=x[\s\S]*<\/main>$/);
    const none = await serve(sampleContext({}));
    expect((await fetch(`${none.url}status/devices/evil`)).status).toBe(404);
  });

  it('a site with more devices than INLINE_VALUES_MAX shows the values of the device picked with ?device=<id>, and /page keeps the pick', async () => {
    const many = Array.from({ length: INLINE_VALUES_MAX + 1 }, (_, i) => ({
      id: `d${i}`, up: true, last_good_age_s: 1, values: [{ id: 'w', unit: 'W', value: 1000 + i, age_s: 1 }],
    }));
    const s = await serve(sampleContext({ devices: () => many }));
    const all = await (await fetch(s.url)).text();
    expect(all).toContain(`${INLINE_VALUES_MAX + 1} devices: pick one to see its live values.`);
    expect(all).toContain('<a href="/?device=d7"><b>d7</b></a>');
    expect(all).not.toContain('class="vals"');
    const one = await (await fetch(`${s.url}?device=d7`)).text();
    expect(one).toContain('<td class="v">1007</td>');
    expect(one.match(/class="vals"/g)).toHaveLength(1);
    expect(await (await fetch(`${s.url}page?device=d8`)).text()).toContain('<td class="v">1008</td>');
  });
});
