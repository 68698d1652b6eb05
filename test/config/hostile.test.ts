// Hostile and broken input: huge files, alias bombs, deep nesting, binary junk, prototype keys,
// and random mutations of a real site. Always a ConfigError, quickly; never a crash.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadSite, loadSiteFromString } from '../../src/config/load.js';
import { packageRoot } from '../../src/runtime/package-root.js';
import { excessiveNesting } from '../../src/config/yaml-nesting.js';
import { parseYaml, Problems } from '../../src/config/yaml-source.js';
import { parseDocument } from 'yaml';
import { modbusProfileChecks } from '../../src/modbus/profile-load.js';

const dir = mkdtempSync(join(tmpdir(), 'ems-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<ConfigError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('hostile config input', () => {
  it('refuses 10 MB of junk on disk before reading it', async () => {
    const file = join(dir, 'big.yaml');
    writeFileSync(file, Buffer.alloc(10 * 1024 * 1024, 'x: [1, 2, 3]\n'));
    const t0 = performance.now();
    const err = await rejection(loadSite(file, { profileChecks: modbusProfileChecks, env: {} }));
    const ms = performance.now() - t0;
    expect(err.problems).toHaveLength(1);
    expect(err.message).toBe(`${file}: file is 10485760 bytes; config files are limited to 1048576 bytes (1 MiB)`);
    expect(ms).toBeLessThan(1000);
  });

  it('refuses an oversized string too', async () => {
    const err = await rejection(loadSiteFromString('a'.repeat(1024 * 1024 + 1), { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.message).toMatch(/limited to 1048576 bytes/);
  });

  it('stops an alias bomb quickly', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 12; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
    const t0 = performance.now();
    const err = await rejection(loadSiteFromString(`version: 1\n${levels.join('\n')}\n`, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.message).toMatch(/x\.yaml:3:\d+: YAML: aliases expand more than 100 times: refusing \(alias bomb\?\)/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('refuses deep bracket nesting without exhausting the stack', async () => {
    const err = await rejection(loadSiteFromString(`version: 1\nsite: ${'['.repeat(100_000)}`, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.message).toMatch(/brackets nest more than 64 levels deep/);
  });

  it('refuses deep block nesting before parsing, at file:line: 3,000 `- ` levels, one line or one per line', async () => {
    const cases = [
      `version: 1\nsite:\n${'- '.repeat(3000)}x\n`,
      `version: 1\nsite:\n${Array.from({ length: 1400 }, (_, i) => `${' '.repeat(i)}-`).join('\n')}\n`,
      `version: 1\nsite:\n${Array.from({ length: 1400 }, (_, i) => `${' '.repeat(i)}a:`).join('\n')}\n`,
    ];
    const where = ['x.yaml:3:129', 'x.yaml:67:65', 'x.yaml:67:65'];
    for (const [i, text] of cases.entries()) {
      const err = await rejection(loadSiteFromString(text, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
      expect(err.problems).toHaveLength(1);
      expect(err.message).toContain(`${where[i]}: YAML: blocks (indentation, \`- \`) nest more than 64 levels deep: refusing`);
    }
  });

  it('the nesting scan leaves real configs alone: block scalars, quotes, anchors, comments', () => {
    const text = [
      'a: |', ...Array.from({ length: 100 }, (_, i) => `${' '.repeat(2 + i)}[[[{ text ${i}`), 'b: >-', '    ]]] folded', '      "deeper',
      'c: &x [1, [2, {d: "]]]"}]] # [[[ comment', 'e: *x', "f: 'it''s [ not a bracket'", 'g: !!str [x]', '- - - ok',
    ].join('\n');
    expect(excessiveNesting(text, 8)).toBeUndefined();
    expect(excessiveNesting(`a: &x ${'['.repeat(9)}`, 8)).toEqual({ kind: 'flow', line: 1, col: 15 });
    expect(excessiveNesting(`a: x 'y\nb: ${'['.repeat(9)}`, 8)).toEqual({ kind: 'flow', line: 2, col: 12 });
  });

  it('a block scalar ends where the parser ends it: nesting after it is counted, at file:line', async () => {
    const deep = `${'- '.repeat(3000)}x`;
    // Each is read by the parser as structure after (or instead of) the block scalar's content.
    const cases: Array<[string, string]> = [
      [`version: 1\nx:\n- a: |\n  b:\n   ${deep}\n`, 'x.yaml:5:'],       // `b:` is a sibling of `a`, not content
      [`version: 1\nx:\n- - |\n  ${deep}\n`, 'x.yaml:4:'],                // the inner entry is the parent
      [`version: 1\nx: # note: |\n  ${deep}\n`, 'x.yaml:3:'],              // a `|` in a comment is no header
      [`version: 1\na: |\n      text\n  ${deep}\n`, 'x.yaml:4:'],          // less indented than the first line
      [`version: 1\na: |9\n  ${deep}\n`, 'x.yaml:3:'],                     // less indented than the indicator says
      [`version: 1\na: |\n  text\n# c\n  ${deep}\n`, 'x.yaml:5:'],          // a less indented comment ends it
      [`version: 1\nx:\n \t${deep}\n`, 'x.yaml:3:'],                       // a tab after the indentation
    ];
    for (const [text, where] of cases) {
      const err = await rejection(loadSiteFromString(text, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
      expect(err.problems).toHaveLength(1);
      expect(err.message).toContain(where);
      expect(err.message).toMatch(/YAML: blocks \(indentation, `- `\) nest more than 64 levels deep: refusing$/);
    }
    // `- ` inside brackets is no YAML, but the parser nests it all the same: counted with the brackets.
    const err = await rejection(loadSiteFromString(`version: 1\nx: [\n${deep}]\n`, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.message).toMatch(/x\.yaml:3:\d+: YAML: brackets nest more than 64 levels deep: refusing$/);
  });

  it('the scan and the parser agree on block scalars: whatever the scan lets through, the parser reads without overflowing', () => {
    // A seeded sample of block scalar shapes with 3,000 levels of `- ` somewhere after the header.
    const prefixes = ['a: ', '- ', '- a: ', '- - ', '? ', 'a: !!str ', 'a: &x ', '- !!str ', 'a: # c: ', '- a: &y '];
    const headers = ['|', '>', '|2', '>-', '|+1', '|-', '| # c', '>9'];
    const middles = ['', '      text', '  text', ' text', '# c', '  # c', 'b:', ' b:', '  b:', '   b:', '    b:'];
    let seed = 42;
    const pick = <T>(xs: readonly T[]): T => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return xs[seed % xs.length] as T; };
    const deep = `${'- '.repeat(3000)}x`;
    let refused = 0;
    for (let n = 0; n < 150; n++) {
      const outer = pick([0, 2]);
      const pad = ' '.repeat(outer);
      const middle = pick(middles);
      const text = `${outer > 0 ? 'root:\n' : ''}${pad}${pick(prefixes)}${pick(headers)}\n${middle === '' ? '' : `${pad}${middle}\n`}${pad}${' '.repeat(pick([0, 1, 2, 3, 4, 6]))}${deep}\n`;
      if (excessiveNesting(text, 64) !== undefined) { refused++; continue; }
      const doc = parseDocument(text, { strict: true, prettyErrors: false });
      expect(doc.errors.map((e) => e.message).filter((m) => /call stack/.test(m)), JSON.stringify(text.slice(0, 80))).toEqual([]);
    }
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThan(150);   // the sample holds real block scalar content too
  });

  it('last resort: a parser stack overflow is reported as nesting too deep, at file:line, never in the engine\'s words', async () => {
    // Deeper than the scan's bound but within the parser's: a limit of the scan is not in the way
    // here; the net is tested directly with a scan bound the parser cannot reach.
    const text = `version: 1\nx:\n  ${'- '.repeat(20_000)}x\n`;
    const problems = new Problems();
    const src = parseYaml(text, 'x.yaml', problems, Number.MAX_SAFE_INTEGER);
    expect(src.doc).toBeUndefined();
    expect(problems.list.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual(['x.yaml:3: YAML: nested too deeply (more than the parser can read): refusing']);
  });

  it('an apostrophe in a plain scalar does not hide later brackets', async () => {
    const err = await rejection(loadSiteFromString(`version: 1\na: it's\nb: ${'['.repeat(3000)}\n`, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.problems).toHaveLength(1);
    expect(err.message).toMatch(/x\.yaml:3:68: YAML: brackets nest more than 64 levels deep: refusing$/);
    // A quoted apostrophe and brackets inside quotes are no nesting at all.
    const ok = `version: 1\nsite: { id: t, region: "it's [[[[", nominal_frequency_hz: 50, name: 'a ''[[['' b' }\n`;
    const err2 = await rejection(loadSiteFromString(`${ok}${'x: '.repeat(1)}${'['.repeat(70)}\n`, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err2.message).toMatch(/x\.yaml:3:68: YAML: brackets nest/);
  });

  it('a raw carriage return in a key is escaped in the error path', async () => {
    const err = await rejection(loadSiteFromString('version: 1\nsite: { id: t, region: r, nominal_frequency_hz: 50 }\n"bad\\rkey": 1\n', { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.message).not.toContain('\r');
    expect(err.message).toMatch(/x\.yaml:3:1 "bad\\rkey": unknown key "bad\\rkey"$/);
  });

  it('an undefined alias is reported as such, at its line', async () => {
    const err = await rejection(loadSiteFromString('version: 1\nsite: { id: t, region: r, nominal_frequency_hz: 50 }\na: *nope\n', { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.problems).toHaveLength(1);
    expect(err.message).toMatch(/x\.yaml:3:4: YAML: alias \*nope has no anchor &nope before it$/);
  });

  it('reports binary junk as one readable problem', async () => {
    const junk = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 256)).toString('latin1');
    const err = await rejection(loadSiteFromString(junk, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    for (const line of err.message.split('\n')) expect(line.length).toBeLessThan(300);
  });

  it('rejects __proto__ and constructor keys and pollutes nothing', async () => {
    const text = 'version: 1\nsite: { id: t, region: r, nominal_frequency_hz: 50 }\ntelemetry:\n  resource_attributes:\n    constructor: x\n'
      + '  otlp_headers: { "__proto__": { polluted: "yes" } }\n';
    const err = await rejection(loadSiteFromString(text, { profileChecks: modbusProfileChecks, file: 'x.yaml', env: {} }));
    expect(err.message.split('\n')).toEqual([
      `${join(process.cwd(), 'x.yaml')}:5:5 telemetry.resource_attributes.constructor: key "constructor" is not allowed`,
      `${join(process.cwd(), 'x.yaml')}:6:19 telemetry.otlp_headers.__proto__: key "__proto__" is not allowed`,
    ]);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('survives 120 random mutations of the demo site: loads or ConfigError, nothing else', async () => {
    const base = readFileSync(join(packageRoot(), 'config/demo-site.yaml'), 'utf8');
    let seed = 42;
    const rnd = (n: number): number => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; }; // xorshift32
    const alphabet = ['', ' ', '\n', ':', '-', '[', '{', '&x', '*x', '"', "'", '#', '${X}', '0', 'zz', '\t'];
    let errors = 0;
    for (let i = 0; i < 120; i++) {
      let text = base;
      for (let k = 0; k < 6; k++) {
        const at = rnd(text.length);
        text = text.slice(0, at) + (alphabet[rnd(alphabet.length)] ?? '') + text.slice(at + rnd(4));
      }
      try {
        await loadSiteFromString(text, { profileChecks: modbusProfileChecks, file: join(packageRoot(), 'config/mutated.yaml'), env: {} });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        const ce = err as ConfigError;
        expect(ce.problems.length).toBeGreaterThan(0);
        for (const p of ce.problems) expect(p.message.length).toBeGreaterThan(0);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(20); // the mutations did break things
  });
});
