// Every command and subcommand of the built CLI answers --help with its usage (exit 0), refuses an
// unknown option by name with its usage (exit 2), and says what is missing in words, not codes.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { assertBuilt, CLI, REPO } from '../runtime/cli-process.js';

function cli(args: string[]): { code: number | null; out: string; err: string } {
  assertBuilt();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const COMMANDS = ['validate', 'schemas', 'simulate', 'decode', 'probe', 'run', 'demo', 'dr', 'dr keygen', 'dr send'];

describe('ems-gateway <command> --help', () => {
  it.each(COMMANDS)('%s --help prints its usage on stdout and exits 0', (command) => {
    for (const flag of ['--help', '-h']) {
      const r = cli([...command.split(' '), flag]);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^usage:\\s+ems-gateway ${command}( |\\n)`));
    }
  });

  it.each(COMMANDS.filter((c) => c !== 'dr'))('%s --frobnicate is a usage error naming the option, with the usage, exit 2', (command) => {
    const r = cli([...command.split(' '), '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(new RegExp(`^ems-gateway ${command}: unknown option --frobnicate \\(known: [^\\n]+\\)\\nusage: ems-gateway ${command}`));
  });

  it('ems-gateway --help lists the commands (stdout, 0); no command is a usage error (stderr, 2)', () => {
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    for (const c of COMMANDS.filter((x) => !x.includes(' '))) expect(help.out).toMatch(new RegExp(`^  ${c} `, 'm'));
    const none = cli([]);
    expect(none.code).toBe(2);
    expect(none.out).toBe('');
    expect(none.err).toMatch(/^ems-gateway: a command is needed\nusage: ems-gateway <command>/);
  });

  it('dr keygen --help and dr send --help are help, not "--out/--config is required"', () => {
    const keygen = cli(['dr', 'keygen', '--help']);
    expect(keygen.code).toBe(0);
    expect(`${keygen.out}${keygen.err}`).not.toContain('is required');
    expect(keygen.out).toContain('--out <prefix>');
    const send = cli(['dr', 'send', '--help']);
    expect(send.code).toBe(0);
    expect(`${send.out}${send.err}`).not.toContain('is required');
    expect(send.out).toContain('--gateway-key <gateway.pub>');
  });

  it('dr refuses an unknown subcommand and an unknown flag instead of ignoring it', () => {
    expect(cli(['dr', 'sned']).code).toBe(2);
    expect(cli(['dr', 'sned']).err).toContain('unknown subcommand "sned"');
    const r = cli(['dr', 'keygen', '--out', '/nonexistent/x', '--force']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown option --force');
  });

  it('run without arguments says the site file is needed, without an internal code', () => {
    const r = cli(['run']);
    expect(r.code).toBe(2);
    expect(r.err).not.toMatch(/GW_[A-Z_]+/);
    expect(r.err).toBe('ems-gateway run: --config <site.yaml> is required\nusage: ems-gateway run --config <site.yaml> [--status-port N] [--status-host H] [--log-level L]\n');
  });

  it('schemas without --write or --check is a usage error (exit 2), --help is not', () => {
    const r = cli(['schemas']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--write or --check is needed');
    expect(cli(['schemas', '--write', '--check']).err).toContain('either --write or --check, not both');
  });
});
