// The status page in a real browser (Debian's chromium, headless): the server renders device ids,
// states, live values and alert names (the first paint needs no JavaScript), the inline script keeps
// them fresh; a screenshot at 1280 px is taken and the page must not scroll sideways.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatusServer } from '../../src/status/status-server.js';
import { silentLogger } from '../../src/runtime/logger.js';
import { chromium, hasChromium } from './chromium.js';
import { sampleContext, sampleProviders } from './fixture.js';

// Screenshots are kept for a human to look at (CI can publish the folder); .tmp/ is git-ignored.
const SHOT_DIR = join(process.cwd(), '.tmp', 'screenshots');

describe.skipIf(!hasChromium())('status page in headless Chromium', () => {
  let server: StatusServer;
  let measuring: http.Server;
  let measureUrl = '';
  let pageFetches = 0;
  let dir: string;
  beforeAll(async () => {
    server = new StatusServer({ host: '127.0.0.1', port: 0, context: sampleContext(sampleProviders(Date.now())), logger: silentLogger() });
    await server.start();
    // The real page with a probe script added: it writes the document's scrollWidth and
    // clientWidth into the DOM at load and after the first refresh. Other paths go to the gateway.
    // `/?noscript`: the page as the gateway sends it, with every script blocked by the CSP.
    measuring = http.createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/page') pageFetches += 1;
      void fetch(new URL(path, server.url)).then(async (r) => {
        let body = await r.text();
        const headers: Record<string, string> = { 'content-type': r.headers.get('content-type') ?? 'text/plain' };
        if (path === '/?noscript') headers['content-security-policy'] = "script-src 'none'";
        else if (path === '/') {
          const probe = "<script>function m(k){var d=document.documentElement;document.body.setAttribute('data-'+k,d.scrollWidth+'/'+d.clientWidth)}"
            + "addEventListener('load',function(){m('load');setTimeout(function(){m('refreshed')},2500)})</script>";
          body = body.replace('</body>', `${probe}</body>`);
        }
        res.writeHead(r.status, headers);
        res.end(body);
      });
    });
    await new Promise<void>((r) => measuring.listen(0, '127.0.0.1', () => r()));
    measureUrl = `http://127.0.0.1:${(measuring.address() as AddressInfo).port}/`;
    dir = mkdtempSync(join(tmpdir(), 'ems-chromium-'));
    mkdirSync(SHOT_DIR, { recursive: true });
  });
  afterAll(async () => {
    await new Promise<void>((r) => measuring.close(() => r()));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders devices, states and alerts after its script ran', async () => {
    const dom = await chromium(['--virtual-time-budget=3000', '--dump-dom', server.url], join(dir, 'dom'));
    for (const text of ['inv-east-1', 'bms-1', 'load-ctl-north', 'DOWN', 'ingestion_drops', 'FIRING', 'stale_meter_data',
      '1843 <span class="muted">readings/s', 'malformed_json', '50.012', 'demo-curtail-0001', 'FAILING', '1 alert firing: ingestion_drops',
      'PENDING', 'FLOW UNCONFIRMED', 'DRY RUN', 'EmsSlowIngestion in north: 6100 ms (threshold 5000 ms), pending', 'in 10 min',
      '2048 / 2048', 'queue full 1180, export failed 2464', 'LOST 1×', 'last 3 min ago', '<dt>broker session</dt><dd>kept</dd>']) {
      expect(dom).toContain(text);
    }
    expect(dom).toContain('MB_TIMEOUT: no answer within 500 ms');
    // Reading delivery: the spool's state and bound, and per sink its state, backlog, oldest age, drain estimate, delivered, target, error.
    const delivery = dom.slice(dom.indexOf('id="delivery"'), dom.indexOf('id="parts"'));
    for (const text of ['<span class="pill ok">OK</span> 624000 readings, 50.0 of 1024 MiB (backpressure)',
      '<td><b>otlp_logs</b></td><td><span class="pill ok">IDLE</span></td><td>0</td><td>\u2014</td><td>\u2014</td><td>1204311</td>',
      '<td><b>postgres</b></td><td><span class="pill down">RETRYING</span></td><td>624000</td><td>49 min ago</td><td>\u2014</td><td>580311</td>',
      'postgres://ems@db:5432/ems<br><span class="err">unreachable: ECONNREFUSED</span>',
      '<td><b>influx</b></td><td><span class="pill ok">SENDING</span></td><td>120000</td><td>2 min ago</td><td>25 min</td><td>1084311</td>',
      'https://influx.example:8086']) {
      expect(delivery).toContain(text);
    }
    expect(dom).not.toContain('Loading status');
    expect(dom).toContain('<div id="banner" class="banner bad">');
  }, 30_000);

  it('paints every section and the live values with JavaScript off', async () => {
    const dom = await chromium(['--virtual-time-budget=3000', '--dump-dom', `${measureUrl}?noscript`], join(dir, 'nojs'));
    for (const text of ['inv-east-1', 'bms-1', 'load-ctl-north', 'DOWN', 'FIRING', '1 alert firing: ingestion_drops', '50.012',
      'demo-curtail-0001', '2048 / 2048', '<dt>broker session</dt><dd>kept</dd>', 'unreachable: ECONNREFUSED',
      '<td class="v">8123</td><td>W</td>', '<td class="v">4 MPPT</td>', '<td class="v">37: COMMS, OVER_TEMP_WARNING, ISOLATION</td>',
      '<td class="v">0 (no flags)</td>', '<td class="v">true</td>', 'NOT IMPLEMENTED', '0x8000 means "not implemented"',
      'IMPLAUSIBLE', 'did you mean CDAB?', 'READ FAILED', 'EMS Demo · SIM-3PH-10K · SN0001', 'href="/status/devices/inv-east-1"',
      "SunSpec 'SunS' at 40000: 1 common @40002+65, 103 inverter_three_phase @40069+50", 'model 123 (controls) is not in the device\'s SunSpec chain: power_limit_pct, wmaxlimpct_sf',
      'model 1 length 65 (profile 66)']) {
      expect(dom).toContain(text);
    }
    expect(dom).not.toContain('<noscript');
    expect(dom).not.toContain('data-load=');
  }, 30_000);

  it('fits 1280 px without a horizontal scrollbar, before and after a refresh', async () => {
    const dom = await chromium(['--virtual-time-budget=4000', '--window-size=1280,900', '--dump-dom', measureUrl], join(dir, 'measure'));
    for (const k of ['load', 'refreshed']) {
      const m = new RegExp(`data-${k}="(\\d+)/(\\d+)"`).exec(dom);
      expect(m, `data-${k} in the dumped DOM`).not.toBeNull();
      const [scroll, client] = [Number(m?.[1]), Number(m?.[2])];
      expect(client).toBeGreaterThan(1200);
      expect(client).toBeLessThanOrEqual(1280);
      expect(scroll, `${k}: scrollWidth ${scroll} <= clientWidth ${client}`).toBeLessThanOrEqual(client);
    }
    expect(dom).toContain('4 MPPT');
    expect(pageFetches, 'the script fetched /page at least once').toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('takes a readable screenshot', async () => {
    const file = join(SHOT_DIR, 'status-page.png');
    rmSync(file, { force: true });
    await chromium(['--virtual-time-budget=3000', '--hide-scrollbars', `--screenshot=${file}`, '--window-size=1280,900', server.url], join(dir, 'shot'));
    expect(existsSync(file)).toBe(true);
    const png = readFileSync(file);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    // IHDR: width and height as the window; a blank page compresses to a few KB, a rendered one does not.
    expect(png.readUInt32BE(16)).toBe(1280);
    expect(png.readUInt32BE(20)).toBe(900);
    expect(statSync(file).size).toBeGreaterThan(30_000);
  }, 30_000);
});
