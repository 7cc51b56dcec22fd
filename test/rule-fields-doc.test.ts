import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFieldPath } from '../correlator/detection/field-path.js';
import { resolveField } from '../correlator/detection/fields.js';
import { FIELD_TYPES } from '../correlator/detection/source-event.js';
import { SCHEMAS } from '../services/rules.js';
import { ruleFieldsDoc } from '../scripts/rule-fields-doc.js';

describe('source field tables', () => {
  it('docs/rule-fields.md is what the tables generate', () => {
    const committed = readFileSync(new URL('../docs/rule-fields.md', import.meta.url), 'utf8');
    // On failure: regenerate with `node --import tsx scripts/rule-fields-doc.ts` and commit docs/rule-fields.md.
    expect(committed, 'docs/rule-fields.md is stale: run node --import tsx scripts/rule-fields-doc.ts').toBe(ruleFieldsDoc());
  });

  it('every source declares each field once, with a type and a description, and every derived root', () => {
    for (const s of SCHEMAS) {
      const names = s.fields.map((f) => f.name);
      expect(
        names.filter((n, i) => names.indexOf(n) !== i),
        `${s.name}: duplicate rows`,
      ).toEqual([]);
      for (const f of s.fields) {
        expect(FIELD_TYPES, `${s.name} ${f.name}`).toContain(f.type);
        expect(f.description.trim(), `${s.name} ${f.name}`).not.toBe('');
        expect(() => parseFieldPath(f.name.replace(/\.\*$/, '')), `${s.name} ${f.name}`).not.toThrow();
      }
      for (const root of s.derived) expect(resolveField(s, parseFieldPath(root)), `${s.name}: derived ${root} has no row`).toBeDefined();
      if (s.indexField) expect(resolveField(s, parseFieldPath(s.indexField))?.spec, `${s.name}: index field`).toBeDefined();
    }
  });
});
