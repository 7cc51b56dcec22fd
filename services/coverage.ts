/**
 * Coverage of the public Kubernetes rule sets (Sigma, Falco k8saudit, Stratus Red Team, Elastic):
 * the catalogue in rules/peers.yaml lists every peer rule; the pack's rules name what they cover
 * in `peers:`; a peer counts as covered when a rule naming it has a passing test that expects it
 * to fire. docs/coverage.md is rendered from this (scripts/coverage-doc.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PEER_SETS } from '../correlator/detection/compile.js';
import { isObj } from '../correlator/json-guards.js';
import { PACKAGE_ROOT } from './package-info.js';
import { loadRules, testRules } from './rules.js';

export type PeerSet = (typeof PEER_SETS)[number];

/** One rule of a public set. */
export interface PeerRule {
  set: PeerSet;
  id: string;
  name: string;
  level: string;
  /** Why no kubevigil rule covers it. */
  notCovered?: string;
}

/** What covers one peer rule. */
export interface CoverageRow {
  peer: PeerRule;
  /** kubevigil rules naming this peer, each with the passing tests that expect it to fire. */
  by: { id: string; type: 'detection' | 'correlation'; tests: string[] }[];
  covered: boolean;
}

export interface Coverage {
  sets: Record<PeerSet, { title: string; source: string; revision: string }>;
  rows: CoverageRow[];
  /** Per set: total, covered by a tested rule, and deliberately not covered. */
  totals: Record<PeerSet, { total: number; covered: number; notCovered: number }>;
  /** Inconsistencies: unknown peers named by rules, peers both covered and excused, peers neither. */
  problems: string[];
}

export const PEER_CATALOGUE = join(PACKAGE_ROOT, 'rules/peers.yaml');

const peerKey = (set: string, id: string) => `${set}:${id}`;

export function loadPeerCatalogue(path = PEER_CATALOGUE): { sets: Coverage['sets']; rules: PeerRule[] } {
  const doc: unknown = parse(readFileSync(path, 'utf8'));
  if (!isObj(doc) || !isObj(doc.sets) || !Array.isArray(doc.rules)) throw new Error(`${path}: expected sets: and rules:`);
  const rules: PeerRule[] = [];
  for (const r of doc.rules) {
    if (!isObj(r) || typeof r.id !== 'string' || !(PEER_SETS as readonly unknown[]).includes(r.set)) throw new Error(`${path}: bad entry ${JSON.stringify(r)}`);
    rules.push({
      set: r.set as PeerSet,
      id: r.id,
      name: String(r.name ?? r.id),
      level: String(r.level ?? ''),
      ...(typeof r.not_covered === 'string' ? { notCovered: r.not_covered } : {}),
    });
  }
  return { sets: doc.sets as Coverage['sets'], rules };
}

/** Computes coverage from the shipped pack, its tests and the catalogue. */
export function computeCoverage(): Coverage {
  const { sets, rules: peers } = loadPeerCatalogue();
  const compiled = loadRules();
  const tests = testRules().results.filter((t) => t.ok);
  const testsFor = new Map<string, string[]>();
  for (const t of tests) for (const id of t.expects) testsFor.set(id, [...(testsFor.get(id) ?? []), t.name]);
  const byPeer = new Map<string, CoverageRow['by']>();
  const problems: string[] = [];
  const known = new Set(peers.map((p) => peerKey(p.set, p.id)));
  const claim = (id: string, type: 'detection' | 'correlation', refs: string[]) => {
    for (const ref of refs) {
      if (!known.has(ref)) problems.push(`${id} names ${ref}, which rules/peers.yaml does not list`);
      byPeer.set(ref, [...(byPeer.get(ref) ?? []), { id, type, tests: testsFor.get(id) ?? [] }]);
    }
  };
  for (const r of compiled.rules) claim(r.id, 'detection', r.peers);
  for (const c of compiled.correlations) claim(c.id, 'correlation', c.peers);
  const rows: CoverageRow[] = peers.map((peer) => {
    const by = byPeer.get(peerKey(peer.set, peer.id)) ?? [];
    const covered = by.some((b) => b.tests.length > 0);
    if (covered && peer.notCovered)
      problems.push(`${peerKey(peer.set, peer.id)} is covered by ${by.map((b) => b.id).join(', ')} but also listed as not covered`);
    if (!covered && !peer.notCovered)
      problems.push(`${peerKey(peer.set, peer.id)} (${peer.name}) is neither covered by a tested rule nor listed with a reason (not_covered)`);
    return { peer, by, covered };
  });
  const totals = Object.fromEntries(
    PEER_SETS.map((s) => {
      const mine = rows.filter((r) => r.peer.set === s);
      return [s, { total: mine.length, covered: mine.filter((r) => r.covered).length, notCovered: mine.filter((r) => !r.covered).length }];
    }),
  ) as Coverage['totals'];
  return { sets, rows, totals, problems };
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const pct = (a: number, b: number) => (b === 0 ? '—' : `${Math.round((100 * a) / b)}%`);

/** docs/coverage.md. */
export function renderCoverage(c: Coverage): string {
  const out: string[] = [
    '# Coverage of the public Kubernetes rule sets',
    '',
    "<!-- Generated from rules/peers.yaml, the rules' `peers:` and their tests: run `npm run docs:coverage`; do not edit. -->",
    '',
    'Each rule of four public Kubernetes detection sets, and the kubevigil rule that detects the same behaviour with a',
    'test written as kube-apiserver logs it (events in `rules/**/*.test.yaml`). A peer counts as covered only when a',
    'rule that names it in `peers:` has a passing test expecting it to fire. What is deliberately not covered says why.',
    '',
    '| set | peer rules | covered | not covered | coverage |',
    '|---|---:|---:|---:|---:|',
  ];
  let total = 0;
  let covered = 0;
  for (const s of PEER_SETS) {
    const t = c.totals[s];
    total += t.total;
    covered += t.covered;
    out.push(
      `| [${cell(c.sets[s].title)}](${c.sets[s].source}) (${c.sets[s].revision}) | ${t.total} | ${t.covered} | ${t.notCovered} | ${pct(t.covered, t.total)} |`,
    );
  }
  out.push(`| **all** | ${total} | ${covered} | ${total - covered} | ${pct(covered, total)} |`, '');
  for (const s of PEER_SETS) {
    out.push(`## ${c.sets[s].title}`, '', '| peer rule | level | kubevigil rule | tests |', '|---|---|---|---|');
    for (const r of c.rows.filter((x) => x.peer.set === s)) {
      const name = r.peer.set === 'falco' ? r.peer.name : `${r.peer.name} (\`${r.peer.id}\`)`;
      if (!r.covered) {
        out.push(`| ${cell(name)} | ${cell(r.peer.level)} | not covered: ${cell(r.peer.notCovered ?? 'no tested rule')} | |`);
        continue;
      }
      const by = r.by.filter((b) => b.tests.length);
      const rules = by.map((b) => `\`${b.id}\`${b.type === 'correlation' ? ' (correlation)' : ''}`).join(', ');
      const tests = [...new Set(by.flatMap((b) => b.tests))]
        .slice(0, 3)
        .map((t) => cell(t))
        .join('; ');
      out.push(`| ${cell(name)} | ${cell(r.peer.level)} | ${rules} | ${tests} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
