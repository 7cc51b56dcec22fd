/**
 * The ClusterRole kubevigil ships for its inventory (deploy/inventory and the Helm chart's
 * rbac.inventory) grants exactly what services/inventory/ lists and watches: get, list and watch on
 * those resources, nothing on Secrets or ConfigMaps, no subresources, no write verbs.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { INVENTORY_PATHS } from '../services/inventory/inventory.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const granted = (rules: Rule[]) => new Set(rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}`))).sort());
/** group/resource of each watched path: /api/v1/pods → /pods, /apis/apps/v1/deployments → apps/deployments. */
const watched = new Set(
  INVENTORY_PATHS.map((p) => {
    const parts = p.split('/').filter(Boolean);
    return parts[0] === 'api' ? `/${parts[2]}` : `${parts[1]}/${parts[3]}`;
  }).sort(),
);

function check(rules: Rule[]): void {
  expect([...granted(rules)]).toEqual([...watched]);
  for (const r of rules) {
    expect(r.verbs.sort()).toEqual(['get', 'list', 'watch']);
    for (const res of r.resources) {
      expect(res).not.toContain('/');
      expect(['secrets', 'configmaps', '*']).not.toContain(res);
    }
    expect(r.apiGroups).not.toContain('*');
  }
}

describe('inventory RBAC', () => {
  it('deploy/inventory/clusterrole.yaml grants get/list/watch on exactly what the inventory watches', () => {
    const docs = parseAllDocuments(readFileSync(new URL('../deploy/inventory/clusterrole.yaml', import.meta.url), 'utf8')).map(
      (d) => d.toJSON() as Record<string, unknown>,
    );
    const role = docs.find((d) => d.kind === 'ClusterRole')!;
    check(role.rules as Rule[]);
    const binding = docs.find((d) => d.kind === 'ClusterRoleBinding')!;
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'kubevigil-inventory' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'kubevigil', namespace: 'kubevigil-system' }]);
  });

  it("the Helm chart's rbac.inventory ClusterRole has the same rules", () => {
    const text = readFileSync(new URL('../charts/kubevigil/templates/rbac.yaml', import.meta.url), 'utf8');
    const rulesText = text.slice(text.indexOf('rules:'), text.indexOf('---'));
    const rules = (parseAllDocuments(rulesText)[0]!.toJSON() as { rules: Rule[] }).rules;
    check(rules);
  });
});
