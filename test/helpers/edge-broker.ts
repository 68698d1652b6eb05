// The shipped broker configuration (deploy/mosquitto/ems.conf) adapted to a test's mosquitto: the
// listener on the test's loopback port, the persistence folder the Debian main file would give,
// and the password and ACL files of the test (or anonymous access without them). Every other
// line is the shipped one, so a test run through this runs what an edge box runs; the lines the
// adaptation relies on must be in the shipped file, or this throws.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MosquittoConfContext } from './mosquitto.js';

export const SHIPPED_CONF = fileURLToPath(new URL('../../deploy/mosquitto/ems.conf', import.meta.url));
export const SHIPPED_ACL = fileURLToPath(new URL('../../deploy/mosquitto/ems.acl', import.meta.url));

export interface EdgeBrokerOptions {
  /** false: the shipped file without its autosave_interval line (mosquitto's default, 1800 s). */
  autosave: boolean;
  /** Authentication and the ACL; without it anonymous clients may do anything. */
  auth?: { passwordFile: string; aclFile: string };
}

const REQUIRED = ['persistence true', 'autosave_interval 1', 'max_queued_messages 0', 'listener 1883', 'allow_anonymous false', 'password_file ', 'acl_file '];

export function edgeBrokerConf(opts: EdgeBrokerOptions): (ctx: MosquittoConfContext) => string[] {
  const shipped = readFileSync(SHIPPED_CONF, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  for (const r of REQUIRED) {
    if (!shipped.some((l) => l.startsWith(r))) throw new Error(`${SHIPPED_CONF} has no '${r.trim()}' line`);
  }
  return (ctx) => [
    `persistence_location ${ctx.dbDir}/`,
    ...shipped.flatMap((line) => {
      if (line.startsWith('listener ')) return [`listener ${ctx.port} 127.0.0.1`];
      if (line.startsWith('autosave_interval ')) return opts.autosave ? [line] : [];
      if (line.startsWith('allow_anonymous ')) return [opts.auth ? line : 'allow_anonymous true'];
      if (line.startsWith('password_file ')) return opts.auth ? [`password_file ${opts.auth.passwordFile}`] : [];
      if (line.startsWith('acl_file ')) return opts.auth ? [`acl_file ${opts.auth.aclFile}`] : [];
      return [line];
    }),
  ];
}
