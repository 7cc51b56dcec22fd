/** A labelled filter `<select>`: the shape every filter bar repeats (label for id, name, options, change). */
import { SEVERITIES } from '../types';

export interface Option {
  value: string;
  label: string;
}

export function SelectField(p: { id: string; name: string; label: string; value: string; options: readonly Option[]; onChange: (value: string) => void }) {
  return (
    <div class="field">
      <label for={p.id}>{p.label}</label>
      <select id={p.id} name={p.name} value={p.value} onChange={(e) => p.onChange((e.target as HTMLSelectElement).value)}>
        {p.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

/** "Any", then each severity as a minimum. */
export const SEVERITY_OPTIONS: readonly Option[] = [{ value: '', label: 'Any' }, ...SEVERITIES.map((s) => ({ value: s, label: `${s} or higher` }))];

/** "Any", then each name as it is (sources); `current` is kept as an option when the URL names another. */
export function anyOf(names: readonly string[], current = ''): Option[] {
  const all = current && !names.includes(current) ? [...names, current] : names;
  return [{ value: '', label: 'Any' }, ...all.map((n) => ({ value: n, label: n }))];
}
