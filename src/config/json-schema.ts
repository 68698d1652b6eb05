// The JSON Schemas in schemas/, generated from the same declarations that validate (site-schema.ts,
// profile-schema.ts), so editors (yaml-language-server) and `validate` agree. A test fails when
// the checked-in files are stale: regenerate with `ems-gateway schemas --write`.
import { profileSchema } from './profile-schema.js';
import type { Json } from './schema-dsl.js';
import { siteSchema } from './site-schema.js';

const SCHEMA_FILES = {
  'site.schema.json': { schema: siteSchema, title: 'EMS gateway site file (config/<site>.yaml)' },
  'device-profile.schema.json': { schema: profileSchema, title: 'EMS gateway device profile (devices/<vendor>-<model>.yaml)' },
} as const;

type SchemaFileName = keyof typeof SCHEMA_FILES;

function document(name: SchemaFileName): Json {
  const { schema, title } = SCHEMA_FILES[name];
  return { $schema: 'http://json-schema.org/draft-07/schema#', $id: name, title, ...schema.json() };
}

/** File name -> exact text to check in (2-space JSON, trailing newline). */
export function generateSchemas(): Map<SchemaFileName, string> {
  const out = new Map<SchemaFileName, string>();
  for (const name of Object.keys(SCHEMA_FILES) as SchemaFileName[]) out.set(name, `${JSON.stringify(document(name), null, 2)}\n`);
  return out;
}
