// The status page in a real browser (Debian's chromium, headless): the inline script must fetch
// /status and render device ids, states and alert names; a screenshot is taken and checked.
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
  let dir: string;
  beforeAll(async () => {
    server = new StatusServer({ host: '127.0.0.1', port: 0, context: sampleContext(sampleProviders(Date.now())), logger: silentLogger() });
    await server.start();
    dir = mkdtempSync(join(tmpdir(), 'ems-chromium-'));
    mkdirSync(SHOT_DIR, { recursive: true });
  });
  afterAll(async () => {
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
    expect(dom).not.toContain('Loading status');
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
