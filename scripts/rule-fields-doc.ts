/** Regenerates docs/rule-fields.md from the field tables of the sources: `node --import tsx scripts/rule-fields-doc.ts`. */
import { writeFileSync } from 'node:fs';
import { renderFieldsDoc } from '../correlator/detection/fields.js';
import { SCHEMAS } from '../services/rules.js';

/** docs/rule-fields.md as the field tables say it must read. */
export function ruleFieldsDoc(): string {
  return renderFieldsDoc(SCHEMAS);
}

if (process.argv[1]?.endsWith('rule-fields-doc.ts')) {
  writeFileSync(new URL('../docs/rule-fields.md', import.meta.url), ruleFieldsDoc());
  console.log(`docs/rule-fields.md: ${SCHEMAS.map((s) => `${s.name} ${s.fields.length} fields`).join(', ')}`);
}
