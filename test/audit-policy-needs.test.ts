/**
 * The shipped audit policy (deploy/kube-apiserver/audit-policy.yaml) against what the shipped
 * detection rules need, derived from the rule pack itself rather than from a hand list: every audit
 * event of a rule test (rules/detections/*.test.yaml) that raises a signal the test expects is
 * replayed through an evaluator of kube-apiserver's audit policy semantics (test/helpers/audit-policy.ts).
 *
 * - A rule needs RequestResponse when its condition reads `responseObject.*`, Request when it reads
 *   `requestObject.*` or a field derived from the request body (`podSpec.*`, `pod.*`, `csr.*`), else
 *   Metadata. The fields come from the compiled rule (macros expanded by the compiler).
 * - Each such request must be logged at or above its rule's need, and the rule must still fire on
 *   the event as the policy would record it (bodies above the level removed, omitted stages dropped).
 * - Nothing about secrets is logged above Metadata, and no TokenRequest response is ever logged.
 *
 * New rules and new rule tests are covered without touching this file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { CompiledNode, CompiledRule } from '../correlator/detection/compile.js';
import { Detector } from '../correlator/detection/engine.js';
import { parseFieldPath } from '../correlator/detection/field-path.js';
import type { Problem } from '../correlator/detection/problems.js';
import { loadRuleTestFile } from '../correlator/detection/rule-tests.js';
import { decodeForTests, loadRules, readYaml, SCHEMAS, SHIPPED_DETECTIONS } from '../services/rules.js';
import {
  AUDIT_LEVELS,
  defaultGroups,
  describeRequest,
  levelRank,
  loggedLevel,
  requestOfEvent,
  type AuditLevel,
  type AuditRequest,
} from './helpers/audit-policy.js';
import { get, isObj, str, type Obj } from './helpers/config-files.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const POLICY = parse(readFileSync(join(ROOT, 'deploy/kube-apiserver/audit-policy.yaml'), 'utf8')) as Obj;
const SOURCE = 'k8s-audit';

/**
 * Derived audit fields computed from a request or response body (connectors/k8s-audit/normalize.ts):
 * the pod spec of a Pod or workload template and its facts, and what a CertificateSigningRequest
 * asks for. They read the request body first, so Request is enough.
 */
const BODY_DERIVED = new Set(['podSpec', 'pod', 'csr']);

/** The level a field read by a condition needs. */
function fieldNeed(field: string): AuditLevel {
  let root: string;
  try {
    const first = parseFieldPath(field)[0];
    root = first && 'key' in first ? first.key : '';
  } catch {
    return 'Metadata'; // rule lint reports the path; nothing is read from a body
  }
  if (root === 'responseObject') return 'RequestResponse';
  if (root === 'requestObject' || BODY_DERIVED.has(root)) return 'Request';
  return 'Metadata';
}

/** Every field a compiled condition reads, macros included (the compiler inlines them). */
function fieldsRead(node: CompiledNode, out = new Set<string>()): Set<string> {
  if (node.field !== undefined) out.add(node.field);
  for (const k of node.kids ?? []) fieldsRead(k, out);
  return out;
}

/** A rule's need: the highest level any field of its condition needs, and the fields that need it. */
function ruleNeed(rule: CompiledRule): { level: AuditLevel; because: string[] } {
  const fields = [...fieldsRead(rule.condition)];
  const rank = Math.max(1, ...fields.map((f) => levelRank(fieldNeed(f))));
  const level = AUDIT_LEVELS[rank]!;
  return { level, because: rank > 1 ? fields.filter((f) => fieldNeed(f) === level) : [] };
}

/** Reads an events_file the way services/rules.ts does: JSON, JSON lines or YAML. */
function readEventsFile(path: string): unknown[] {
  const text = readFileSync(path, 'utf8');
  if (/\.ya?ml$/.test(path)) return [parse(text) as unknown];
  try {
    return [JSON.parse(text.trim()) as unknown];
  } catch {
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as unknown);
  }
}

/** One audit event of a rule test that raised a signal of a rule the test expects. */
interface Firing {
  rule: CompiledRule;
  /** Test file and case, for messages. */
  where: string;
  /** The event as the test gives it. */
  raw: Obj;
  /** Shared by the stages of one request (exec and attach are logged at two). */
  requestKey: string;
  /** The signal's actor key. */
  actor: string;
}

const loaded = loadRules();
const detector = new Detector(loaded.rules, SCHEMAS);
const problems: Problem[] = [];

/** Every audit event of the shipped rule tests. */
const testEvents: Obj[] = [];

/** Every (event, expected rule) pair the shipped rule tests exercise. */
function collectFirings(): Firing[] {
  const out: Firing[] = [];
  const testFiles = readdirSync(SHIPPED_DETECTIONS)
    .filter((f) => /\.test\.ya?ml$/.test(f))
    .sort();
  for (const name of testFiles) {
    const testFile = join(SHIPPED_DETECTIONS, name);
    const ruleFile = testFile.replace(/\.test\.ya?ml$/, '.yaml');
    const doc = readYaml(testFile, problems);
    const tf = loadRuleTestFile(testFile, ruleFile, doc, (rel) => readEventsFile(resolve(dirname(testFile), rel)), problems);
    for (const t of tf.tests) {
      if (t.source !== SOURCE) continue;
      const expected = new Set(t.expect.map((e) => e.rule));
      t.events.forEach((value, i) => {
        decodeForTests(SOURCE, value).events.forEach((ev, j) => {
          const raw = ev.raw as Obj;
          testEvents.push(raw);
          for (const s of detector.detect(ev)) {
            if (!expected.has(s.rule.id)) continue;
            const rule = loaded.rules.find((r) => r.id === s.rule.id)!;
            const requestKey = `${name}/${t.name}/${str(raw.auditID) || `#${i}.${j}`}`;
            out.push({ rule, where: `${name}: ${t.name}`, raw, requestKey, actor: s.actor.key });
          }
        });
      });
    }
  }
  return out;
}

/** The event as kube-apiserver would record it under the policy; undefined when it is not recorded. */
function recordedAs(raw: Obj): Obj | undefined {
  const level = loggedLevel(POLICY, requestOfEvent(raw));
  if (level === 'None') return undefined;
  const ev = structuredClone(raw);
  ev.level = level;
  if (levelRank(level) < levelRank('RequestResponse')) delete ev.responseObject;
  if (levelRank(level) < levelRank('Request')) delete ev.requestObject;
  if (POLICY.omitManagedFields === true)
    for (const k of ['requestObject', 'responseObject']) {
      const meta = get(ev, [k, 'metadata']);
      if (isObj(meta)) delete meta.managedFields;
    }
  return ev;
}

const firesOn = (ruleId: string, raw: Obj) => decodeForTests(SOURCE, raw).events.some((ev) => detector.detect(ev).some((s) => s.rule.id === ruleId));

/** Firings of one rule for one request, across its stages. */
function byRequest(firings: Firing[]): Firing[][] {
  const groups = new Map<string, Firing[]>();
  for (const f of firings) {
    const key = `${f.rule.id}|${f.requestKey}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.values()];
}

/** What the policy does to one request that raised a rule's signal in a rule test. */
interface Verdict {
  firing: Firing;
  request: AuditRequest;
  need: { level: AuditLevel; because: string[] };
  /** The highest level any of its stages is logged at. */
  got: AuditLevel;
  /** The rule still fires on one of its stages as the policy records them. */
  fires: boolean;
}

function judge(group: Firing[]): Verdict {
  const firing = group[0]!;
  const levels = group.map((f) => loggedLevel(POLICY, requestOfEvent(f.raw)));
  return {
    firing,
    request: requestOfEvent(firing.raw),
    need: ruleNeed(firing.rule),
    got: levels.reduce((a, b) => (levelRank(b) > levelRank(a) ? b : a)),
    fires: group.some((f) => {
      const ev = recordedAs(f.raw);
      return ev !== undefined && firesOn(f.rule.id, ev);
    }),
  };
}

const isSecret = (r: AuditRequest) => r.resource === 'secrets' && (r.group ?? '') === '';
const ok = (v: Verdict) => levelRank(v.got) >= levelRank(v.need.level) && v.fires;
/**
 * Discovery and health paths the policy drops on purpose (every kubectl command and controller
 * starts with them). An audit policy cannot tell an impersonated request from another, so a rule on
 * impersonation also fires on impersonated discovery; the signal must then come from the resource
 * requests that follow, which the policy logs.
 */
const droppedNonResource = (v: Verdict) => v.request.resource === undefined && v.got === 'None';

function explain(v: Verdict): string {
  const { rule, where } = v.firing;
  const head = `${rule.id} [${where}]: ${describeRequest(v.request)}`;
  if (levelRank(v.got) < levelRank(v.need.level)) {
    const why = v.need.because.length ? ` (reads ${v.need.because.join(', ')})` : '';
    const note = isSecret(v.request) ? '; secrets are never logged above Metadata: the rule must do without the body' : '';
    return `${head} is logged at ${v.got}, the rule needs ${v.need.level}${why}${note}`;
  }
  return `${head} is logged at ${v.got}, but the rule no longer fires on the event as recorded`;
}

describe('deploy/kube-apiserver/audit-policy.yaml logs what the shipped rules need', () => {
  const firings = collectFirings();
  const verdicts = byRequest(firings).map(judge);

  it('finds the rule tests and their audit events', () => {
    expect(problems.map((p) => `${p.file} ${p.item ?? ''} ${p.field}: ${p.message}`)).toEqual([]);
    expect(verdicts.length).toBeGreaterThan(20);
    // Every level a rule can need is exercised, or the derivation of needs has gone blind.
    const needs = new Set(verdicts.map((v) => v.need.level));
    expect([...needs].sort()).toEqual(['Metadata', 'Request', 'RequestResponse']);
  });

  it("logs every request that raises an expected signal at the level its rule's condition reads, and the rule still fires on it", () => {
    const failures = verdicts.filter((v) => !ok(v) && !droppedNonResource(v)).map(explain);
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('drops only discovery and health requests, and the same signal is still raised by a logged request of the same actor', () => {
    const failures = verdicts
      .filter(droppedNonResource)
      .filter(
        (v) => !verdicts.some((o) => ok(o) && o.firing.rule.id === v.firing.rule.id && o.firing.where === v.firing.where && o.firing.actor === v.firing.actor),
      )
      .map((v) => `${explain(v)}, and no logged request of ${v.firing.actor} in the same test raises it`);
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('logs nothing about secrets above Metadata, in the rule tests or for any identity', () => {
    const requests: AuditRequest[] = testEvents.map(requestOfEvent).filter(isSecret);
    expect(requests.length, 'rule tests with secret requests').toBeGreaterThan(0);
    for (const user of ['system:node:worker-1', 'system:serviceaccount:kube-system:coredns', 'system:kube-controller-manager', 'system:apiserver', 'alice'])
      for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'])
        for (const namespace of ['kube-system', 'payments', ''])
          requests.push({ user, groups: defaultGroups(user), verb, resource: 'secrets', namespace, name: verb === 'get' ? 'db' : undefined });
    const above = requests.filter((r) => levelRank(loggedLevel(POLICY, r)) > levelRank('Metadata')).map(describeRequest);
    expect(above).toEqual([]);
  });

  it('never logs the response of a TokenRequest (it holds the token)', () => {
    for (const user of [
      'system:node:worker-1',
      'system:serviceaccount:kube-system:coredns',
      'system:serviceaccount:web:frontend',
      'system:kube-controller-manager',
      'alice',
    ])
      for (const namespace of ['kube-system', 'web']) {
        const r: AuditRequest = {
          user,
          groups: defaultGroups(user),
          verb: 'create',
          resource: 'serviceaccounts',
          subresource: 'token',
          namespace,
          name: 'frontend',
        };
        expect(loggedLevel(POLICY, r), describeRequest(r)).toBe('Request');
      }
  });
});

describe('deploy/kube-apiserver/audit-policy.yaml: a stolen node or kube-system token cannot exec unrecorded', () => {
  const identities = [
    { user: 'system:node:worker-1', groups: ['system:nodes', 'system:authenticated'] },
    {
      user: 'system:serviceaccount:kube-system:coredns',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
    },
    // The control plane's own identities, also under a None rule for reads.
    { user: 'system:kube-controller-manager', groups: ['system:authenticated'] },
    { user: 'system:kube-proxy', groups: ['system:authenticated'] },
  ];

  it('logs exec, attach and port-forward over WebSockets (GET) and SPDY (POST) at Request or more', () => {
    for (const who of identities)
      for (const subresource of ['exec', 'attach', 'portforward'])
        for (const verb of ['get', 'create'])
          for (const namespace of ['kube-system', 'payments'])
            for (const stage of ['ResponseStarted', 'ResponseComplete']) {
              const r: AuditRequest = { ...who, verb, resource: 'pods', subresource, namespace, name: 'db-0', stage };
              expect(levelRank(loggedLevel(POLICY, r)), `${describeRequest(r)}: ${loggedLevel(POLICY, r)}`).toBeGreaterThanOrEqual(levelRank('Request'));
            }
  });

  it('logs the kubelet API through nodes/proxy, whatever the verb', () => {
    for (const who of identities)
      for (const verb of ['get', 'create', 'update', 'patch', 'delete']) {
        const r: AuditRequest = { ...who, verb, resource: 'nodes', subresource: 'proxy', name: 'worker-2', stage: 'ResponseComplete' };
        expect(levelRank(loggedLevel(POLICY, r)), `${describeRequest(r)}: ${loggedLevel(POLICY, r)}`).toBeGreaterThanOrEqual(levelRank('Metadata'));
      }
  });
});

describe('the audit policy evaluator follows kube-apiserver (k8s.io/apiserver pkg/audit/policy/checker.go)', () => {
  const alice: AuditRequest = { user: 'alice', groups: ['devs', 'system:authenticated'], verb: 'get' };
  const level = (rules: Obj[], r: AuditRequest, omitStages: string[] = []) => loggedLevel({ omitStages, rules: [...rules, { level: 'Metadata' }] }, r);
  const rr = (extra: Obj): Obj => ({ level: 'RequestResponse', ...extra });

  it('takes the first matching rule; no match is None', () => {
    expect(loggedLevel({ rules: [] }, alice)).toBe('None');
    expect(level([{ level: 'None' }, rr({})], { ...alice, resource: 'pods' })).toBe('None');
  });

  it('matches users, userGroups (any group) and verbs', () => {
    const pods = { ...alice, resource: 'pods', namespace: 'shop' };
    expect(level([rr({ users: ['bob'] })], pods)).toBe('Metadata');
    expect(level([rr({ users: ['alice'] })], pods)).toBe('RequestResponse');
    expect(level([rr({ userGroups: ['ops', 'devs'] })], pods)).toBe('RequestResponse');
    expect(level([rr({ verbs: ['list'] })], pods)).toBe('Metadata');
    // A request that failed authentication has no user: users and userGroups rules never match it.
    expect(level([rr({ userGroups: ['system:authenticated'] })], { ...pods, user: '', groups: defaultGroups('') })).toBe('Metadata');
  });

  it('matches group/resource, "res/sub", "*", "*/sub", "res/*" and resourceNames', () => {
    const exec = { ...alice, resource: 'pods', subresource: 'exec', namespace: 'shop', name: 'db-0' };
    const gr = (resources: string[], extra: Obj = {}) => [rr({ resources: [{ group: '', resources, ...extra }] })];
    expect(level(gr(['pods']), exec)).toBe('Metadata'); // "pods" is not pods/exec
    expect(level(gr(['pods/exec']), exec)).toBe('RequestResponse');
    expect(level(gr(['*']), exec)).toBe('RequestResponse');
    expect(level(gr(['*/exec']), exec)).toBe('RequestResponse');
    expect(level(gr(['*/exec']), { ...exec, subresource: undefined })).toBe('Metadata');
    expect(level(gr(['pods/*']), exec)).toBe('RequestResponse');
    expect(level(gr(['pods/*']), { ...exec, subresource: undefined })).toBe('RequestResponse'); // and pods itself
    expect(level(gr(['pods/exec'], { resourceNames: ['web-0'] }), exec)).toBe('Metadata');
    expect(level(gr(['pods/exec'], { resourceNames: ['db-0'] }), exec)).toBe('RequestResponse');
    expect(level([rr({ resources: [{ group: 'apps', resources: ['pods/exec'] }] })], exec)).toBe('Metadata');
    expect(level([rr({ resources: [{ group: '' }] })], exec)).toBe('RequestResponse'); // a whole group
    expect(level(gr(['*']), { ...alice, path: '/api' })).toBe('Metadata'); // resource rules never match non-resource requests
  });

  it('matches namespaces, "" being cluster-scoped and all-namespace requests', () => {
    const rule = [rr({ namespaces: [''] })];
    expect(level(rule, { ...alice, resource: 'nodes', name: 'worker-1' })).toBe('RequestResponse');
    expect(level(rule, { ...alice, verb: 'list', resource: 'secrets' })).toBe('RequestResponse');
    expect(level(rule, { ...alice, resource: 'secrets', namespace: 'shop' })).toBe('Metadata');
    expect(level([rr({ namespaces: ['shop'] })], { ...alice, resource: 'secrets', namespace: 'shop' })).toBe('RequestResponse');
  });

  it('matches nonResourceURLs exactly or by a trailing "*", and only non-resource requests', () => {
    const rule = [rr({ nonResourceURLs: ['/healthz*', '/version'] })];
    expect(level(rule, { ...alice, path: '/healthz/etcd' })).toBe('RequestResponse');
    expect(level(rule, { ...alice, path: '/version' })).toBe('RequestResponse');
    expect(level(rule, { ...alice, path: '/version/x' })).toBe('Metadata');
    expect(level(rule, { ...alice, resource: 'pods' })).toBe('Metadata');
  });

  it('drops the stages in the policy and the rule omitStages', () => {
    const r = { ...alice, resource: 'pods', subresource: 'exec', namespace: 'shop', stage: 'ResponseStarted' };
    expect(level([rr({ omitStages: ['ResponseStarted'] })], r)).toBe('None');
    expect(level([rr({})], r, ['ResponseStarted'])).toBe('None');
    expect(level([rr({})], { ...r, stage: 'ResponseComplete' }, ['ResponseStarted'])).toBe('RequestResponse');
  });

  it('reads the request from an audit event: the authenticated user, objectRef, or the URI', () => {
    const ev = {
      verb: 'get',
      stage: 'ResponseComplete',
      user: { username: 'system:admin', groups: ['system:masters'] },
      impersonatedUser: { username: 'bob' },
      requestURI: '/api/v1/namespaces/shop/pods/db-0/exec?command=sh',
    };
    expect(requestOfEvent(ev)).toMatchObject({
      user: 'system:admin',
      groups: ['system:masters'],
      group: '',
      resource: 'pods',
      subresource: 'exec',
      namespace: 'shop',
      name: 'db-0',
    });
    expect(requestOfEvent({ ...ev, user: { username: 'system:serviceaccount:web:frontend' }, requestURI: '/apis/apps/v1/deployments' })).toMatchObject({
      groups: ['system:serviceaccounts', 'system:serviceaccounts:web', 'system:authenticated'],
      group: 'apps',
      resource: 'deployments',
      namespace: '',
    });
    const discovery = requestOfEvent({ ...ev, requestURI: '/apis/apps/v1?timeout=32s' });
    expect(discovery.path).toBe('/apis/apps/v1');
    expect(discovery.resource).toBeUndefined();
    expect(requestOfEvent({ ...ev, objectRef: { resource: 'nodes', name: 'worker-1', subresource: 'proxy' } })).toMatchObject({
      resource: 'nodes',
      subresource: 'proxy',
      namespace: '',
    });
  });
});
