/** Regenerates the configuration table of README.md from the settings in code: `node --import tsx scripts/readme-settings.ts`. */
import { readFileSync, writeFileSync } from 'node:fs';
import { SETTINGS } from '../services/config.js';

const START = '<!-- settings:start -->';
const END = '<!-- settings:end -->';

/** The table, as README.md must contain it. */
export function settingsTable(): string {
  const rows = SETTINGS.map((s) => `| \`${s.env}\` | ${s.default === '(none)' ? '—' : `\`${s.default}\``} | ${s.help.replace(/\|/g, '\\|')} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

if (process.argv[1]?.endsWith('readme-settings.ts')) {
  const path = new URL('../README.md', import.meta.url);
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md needs ${START} and ${END} around the settings table`);
  writeFileSync(path, `${text.slice(0, a + START.length)}\n${settingsTable()}\n${text.slice(b)}`);
  console.log(`README.md: ${SETTINGS.length} settings`);
}
