import { describe, expect, it } from 'vitest';
import { compileRules, type RuleFileInput } from './compile.js';
import { Detector } from './engine.js';
import type { SourceEvent, SourceSchema } from './source-event.js';
import { formatProblem } from './problems.js';

const schema: SourceSchema = {
  name: 'k8s-audit',
  derived: ['actor', 'decision'],
  indexField: 'objectRef.resource',
  fields: [
    ...['verb', 'requestURI', 'userAgent', 'user.username', 'objectRef.resource', 'objectRef.name', 'objectRef.subresource', 'decision', 'actor.name'].map(
      (name) => ({ name, type: 'string' as const, description: name }),
    ),
    { name: 'user.groups', type: 'string[]', description: 'groups' },
    { name: 'responseStatus.code', type: 'number', description: 'status' },
    { name: 'annotations.*', type: 'string', description: 'annotations' },
    { name: 'requestObject.*', type: 'any', description: 'request body' },
  ],
};

function ev(raw: Record<string, unknown>, derived: object = {}): SourceEvent {
  return {
    source: 'k8s-audit',
    key: String(raw.auditID ?? 'k'),
    observedTime: 2000,
    raw,
    derived,
    final: true,
    details: () => ({
      time: 1000,
      actor: { key: 'user:alice', type: 'user', name: 'alice' },
      target: {},
      outcome: 'allowed',
      entities: [],
      attributes: {},
      excerpt: { auditID: raw.auditID },
    }),
  };
}

const rule = (over: Record<string, unknown>) => ({
  id: 'test-rule',
  title: 'Test rule',
  description: 'For tests. False positives: none.',
  source: 'k8s-audit',
  severity: 'medium',
  kind: 'secret.read',
  mitre: ['T1552.007'],
  ...over,
});

function detector(files: RuleFileInput[]): Detector {
  const r = compileRules(files, [schema]);
  expect(r.problems.map(formatProblem)).toEqual([]);
  return new Detector(r.rules, [schema]);
}

describe('compileRules', () => {
  it('reports every problem in every file at once, with file, item and field', () => {
    const r = compileRules(
      [
        {
          file: 'a.yaml',
          doc: {
            rules: [
              rule({ id: 'Bad Id', severity: 'urgent', kind: 'nope', mitre: ['X1'], condition: { field: 'verb', regex: '(' } }),
              rule({
                id: 'ok-rule',
                description: 'no advice here',
                condition: { all: [{ macro: 'missing' }, { field: 'verb', in: { list: 'nolist' } }, { field: 'a..b', eq: 1 }] },
              }),
            ],
          },
        },
        { file: 'b.yaml', doc: { exceptions: [{ rule: 'no-such-rule', name: 'x', condition: { field: 'verb', eq: 'get' } }], bogus: 1 } },
      ],
      [schema],
    );
    const lines = r.problems.map(formatProblem);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^a\.yaml: Bad Id: id: id must be/),
        expect.stringMatching(/^a\.yaml: Bad Id: severity: severity must be one of info, low/),
        expect.stringMatching(/^a\.yaml: Bad Id: kind: unknown signal kind "nope"/),
        expect.stringMatching(/^a\.yaml: Bad Id: mitre\[0\]: "X1" is not an ATT&CK technique id/),
        expect.stringMatching(/^a\.yaml: Bad Id: condition\.regex: invalid regular expression/),
        expect.stringMatching(/^a\.yaml: ok-rule: description: say how the rule avoids noise/),
        expect.stringMatching(/^a\.yaml: ok-rule: condition\.all\[0\]\.macro: unknown macro "missing"/),
        expect.stringMatching(/^a\.yaml: ok-rule: condition\.all\[1\]\.in: unknown list "nolist"/),
        expect.stringMatching(/^a\.yaml: ok-rule: condition\.all\[2\]\.field: field path "a\.\.b" is invalid/),
        expect.stringMatching(/^b\.yaml: bogus: unknown key "bogus"/),
        expect.stringMatching(/^b\.yaml: exception x: rule: no rule with id "no-such-rule"/),
      ]),
    );
    expect(lines).toHaveLength(11);
  });

  it('matches arrays element-wise, through [*] wildcards, quoted keys and derived fields', () => {
    const d = detector([
      {
        file: 'r.yaml',
        doc: {
          rules: [
            rule({ id: 'priv', condition: { field: 'requestObject.spec.containers[*].securityContext.privileged', eq: true } }),
            rule({ id: 'ann', condition: { field: 'annotations["authorization.k8s.io/decision"]', eq: 'forbid' } }),
            rule({
              id: 'grp',
              condition: {
                all: [
                  { field: 'user.groups', eq: 'system:masters' },
                  { field: 'decision', eq: 'allow' },
                ],
              },
            }),
            rule({
              id: 'num',
              condition: {
                all: [
                  { field: 'responseStatus.code', gte: 400 },
                  { field: 'responseStatus.code', lt: 500 },
                ],
              },
            }),
          ],
        },
      },
    ]);
    const priv = ev({ requestObject: { spec: { containers: [{ securityContext: {} }, { securityContext: { privileged: true } }] } } });
    expect(d.detect(priv).map((s) => s.rule.id)).toEqual(['priv']);
    expect(d.detect(ev({ requestObject: { spec: { containers: [{}] } } }))).toEqual([]);
    expect(d.detect(ev({ annotations: { 'authorization.k8s.io/decision': 'forbid' } })).map((s) => s.rule.id)).toEqual(['ann']);
    expect(d.detect(ev({ user: { groups: ['a', 'system:masters'] } }, { decision: 'allow' })).map((s) => s.rule.id)).toEqual(['grp']);
    expect(d.detect(ev({ user: { groups: ['system:masters'] } }, { decision: 'forbid' }))).toEqual([]);
    expect(d.detect(ev({ responseStatus: { code: 403 } })).map((s) => s.rule.id)).toEqual(['num']);
    expect(d.detect(ev({ responseStatus: { code: 500 } }))).toEqual([]);
  });

  it('supports every string operator, lists, macros, not and (?i) regexes', () => {
    const d = detector([
      {
        file: 'r.yaml',
        doc: {
          lists: [{ name: 'tools', items: ['curl', 'wget'] }],
          macros: [{ name: 'is_exec', condition: { field: 'objectRef.subresource', eq: 'exec' } }],
          rules: [
            rule({
              id: 'ops',
              condition: {
                all: [
                  { macro: 'is_exec' },
                  { field: 'requestURI', contains: { list: 'tools' } },
                  { field: 'requestURI', startswith: '/api/' },
                  { field: 'userAgent', regex: '(?i)^KUBECTL/' },
                  { not: { field: 'user.username', endswith: ':admin' } },
                  { field: 'objectRef.name', exists: true },
                ],
              },
            }),
          ],
        },
      },
    ]);
    const base = { objectRef: { subresource: 'exec', name: 'p' }, requestURI: '/api/v1/x?command=curl', userAgent: 'kubectl/v1.30', user: { username: 'bob' } };
    expect(d.detect(ev(base))).toHaveLength(1);
    expect(d.detect(ev({ ...base, user: { username: 'system:admin' } }))).toHaveLength(0);
    expect(d.detect(ev({ ...base, requestURI: '/api/v1/x?command=ls' }))).toHaveLength(0);
    expect(d.detect(ev({ ...base, objectRef: { subresource: 'exec' } }))).toHaveLength(0);
    expect(d.detect(ev({ ...base, userAgent: 'curl/8' }))).toHaveLength(0);
  });

  it('lets a later file append to lists, add exceptions and override severity or disable rules', () => {
    const shipped: RuleFileInput = {
      file: 'shipped.yaml',
      doc: {
        lists: [{ name: 'watchers', items: ['system:serviceaccount:cert-manager:cert-manager'] }],
        rules: [
          rule({
            id: 'watch',
            severity: 'high',
            condition: { all: [{ field: 'verb', eq: 'watch' }, { not: { field: 'user.username', in: { list: 'watchers' } } }] },
          }),
          rule({ id: 'other', condition: { field: 'verb', eq: 'get' } }),
        ],
      },
    };
    const user: RuleFileInput = {
      file: 'mine.yaml',
      doc: {
        lists: [{ name: 'watchers', append: true, items: ['system:serviceaccount:ops:backup'] }],
        exceptions: [{ rule: 'watch', name: 'ci robot', condition: { field: 'user.username', eq: 'ci' } }],
        overrides: [
          { rule: 'watch', severity: 'low' },
          { rule: 'other', enabled: false },
        ],
      },
    };
    const d = detector([shipped, user]);
    const watch = (username: string) => d.detect(ev({ verb: 'watch', user: { username } }));
    expect(watch('system:serviceaccount:ops:backup')).toEqual([]);
    expect(watch('ci')).toEqual([]);
    expect(watch('mallory').map((s) => [s.rule.id, s.severity])).toEqual([['watch', 'low']]);
    expect(d.detect(ev({ verb: 'get' }))).toEqual([]);
  });

  it('explains a match with the leaf conditions that held, and never copies secret values', () => {
    const d = detector([
      {
        file: 'r.yaml',
        doc: {
          rules: [
            rule({
              id: 'cm-creds',
              output: 'configmap {objectRef.name} by {user.username}',
              condition: {
                all: [
                  { field: 'objectRef.resource', eq: 'configmaps' },
                  { field: 'requestObject.data[*]', regex: 'aws_secret_access_key' },
                ],
              },
            }),
          ],
        },
      },
    ]);
    const [s] = d.detect(
      ev({
        auditID: 'a1',
        objectRef: { resource: 'configmaps', name: 'cfg' },
        user: { username: 'bob' },
        requestObject: { data: { k: 'aws_secret_access_key = hunter2' } },
      }),
    );
    expect(s!.title).toBe('configmap cfg by bob');
    expect(s!.matched).toEqual([
      { field: 'objectRef.resource', op: 'eq', expected: 'configmaps', actual: 'configmaps' },
      { field: 'requestObject.data[*]', op: 'regex', expected: 'aws_secret_access_key', actual: '[REDACTED]' },
    ]);
    expect(JSON.stringify(s)).not.toContain('hunter2');
    // Deterministic ids: the same rule on the same event gives the same id.
    const [again] = d.detect(
      ev({
        auditID: 'a1',
        objectRef: { resource: 'configmaps', name: 'cfg' },
        user: { username: 'bob' },
        requestObject: { data: { k: 'aws_secret_access_key = x' } },
      }),
    );
    expect(again!.id).toBe(s!.id);
    expect(s!.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('indexes rules on the source index field without changing results', () => {
    const d = detector([
      {
        file: 'r.yaml',
        doc: {
          rules: [
            rule({
              id: 'secrets-only',
              condition: {
                all: [
                  { field: 'objectRef.resource', in: ['secrets'] },
                  { field: 'verb', eq: 'get' },
                ],
              },
            }),
            rule({ id: 'any-resource', condition: { field: 'verb', eq: 'get' } }),
            rule({
              id: 'either',
              condition: {
                any: [
                  { field: 'objectRef.resource', eq: 'pods' },
                  { field: 'objectRef.resource', eq: 'secrets' },
                ],
              },
            }),
          ],
        },
      },
    ]);
    expect(d.detect(ev({ verb: 'get', objectRef: { resource: 'secrets' } })).map((s) => s.rule.id)).toEqual(['secrets-only', 'any-resource', 'either']);
    expect(d.detect(ev({ verb: 'get', objectRef: { resource: 'pods' } })).map((s) => s.rule.id)).toEqual(['any-resource', 'either']);
    expect(d.detect(ev({ verb: 'get', objectRef: { resource: 'nodes' } })).map((s) => s.rule.id)).toEqual(['any-resource']);
    expect(d.detect(ev({ verb: 'get' })).map((s) => s.rule.id)).toEqual(['any-resource']);
  });

  it('indexes on several fields, raw and derived, and gives the same answers as evaluating every rule', () => {
    const indexed: SourceSchema = { ...schema, indexFields: ['verb', 'decision'] };
    const files: RuleFileInput[] = [
      {
        file: 'r.yaml',
        doc: {
          rules: [
            rule({ id: 'denied-anything', condition: { field: 'decision', eq: 'forbid' } }),
            rule({
              id: 'secret-get',
              condition: {
                all: [
                  { field: 'objectRef.resource', eq: 'secrets' },
                  { field: 'verb', in: ['get', 'list'] },
                ],
              },
            }),
            rule({ id: 'not-delete', condition: { not: { field: 'verb', eq: 'delete' } } }),
            rule({
              id: 'allowed-pods',
              condition: {
                all: [
                  { field: 'objectRef.resource', eq: 'pods' },
                  { field: 'decision', eq: 'allow' },
                ],
              },
            }),
          ],
        },
      },
    ];
    const r = compileRules(files, [indexed]);
    expect(r.problems).toEqual([]);
    const fast = new Detector(r.rules, [indexed]);
    const plain = new Detector(r.rules, [{ ...schema, indexField: undefined }]);
    const events: SourceEvent[] = [];
    for (const verb of ['get', 'list', 'delete', 'patch', 'nonsense', undefined])
      for (const resource of ['secrets', 'pods', 'nodes', undefined])
        for (const decision of ['allow', 'forbid', '', 'odd']) events.push(ev({ verb, objectRef: resource ? { resource } : undefined }, { decision }));
    for (const e of events) expect(fast.detect(e).map((x) => x.rule.id)).toEqual(plain.detect(e).map((x) => x.rule.id));
    expect(fast.detect(ev({ verb: 'get', objectRef: { resource: 'secrets' } }, { decision: 'forbid' })).map((x) => x.rule.id)).toEqual([
      'denied-anything',
      'secret-get',
      'not-delete',
    ]);
  });

  it('matches addresses against CIDR blocks (IPv4, IPv6 and mapped IPv4), from lists, and rejects malformed blocks', () => {
    const d = detector([
      {
        file: 'r.yaml',
        doc: {
          lists: [{ name: 'nets', items: ['10.0.0.0/8', 'fd00::/8', '192.0.2.7'] }],
          rules: [rule({ id: 'outside', condition: { not: { field: 'requestURI', cidr: { list: 'nets' } } } })],
        },
      },
    ]);
    const outside = (addr: string) => d.detect(ev({ requestURI: addr })).length === 1;
    expect(outside('10.1.2.3')).toBe(false);
    expect(outside('::ffff:10.1.2.3')).toBe(false);
    expect(outside('fd00::1')).toBe(false);
    expect(outside('192.0.2.7')).toBe(false);
    expect(outside('192.0.2.8')).toBe(true);
    expect(outside('203.0.113.9')).toBe(true);
    expect(outside('not-an-address')).toBe(true);
    const bad = compileRules([{ file: 'r.yaml', doc: { rules: [rule({ condition: { field: 'requestURI', cidr: ['10.0.0.0/33', '10.0.0/8'] } })] } }], [schema]);
    expect(bad.problems.map(formatProblem)).toEqual([
      'r.yaml: test-rule: condition.cidr: "10.0.0.0/33" is not an address or CIDR block such as 10.0.0.0/8 or fd00::/8',
    ]);
  });

  it('renders absent template fields in words: the fallback given after |, else "unknown <name>"', () => {
    const d = detector([
      {
        file: 'r.yaml',
        doc: {
          rules: [
            rule({
              condition: { field: 'verb', eq: 'get' },
              output: '{actor.name} {verb} {objectRef.name|an unnamed object} for {annotations.team} as {user.groups}',
            }),
          ],
        },
      },
    ]);
    const [s] = d.detect(ev({ verb: 'get', user: { groups: ['a', 'b'] } }, { actor: { name: 'alice' } }));
    expect(s!.title).toBe('alice get an unnamed object for unknown team as a, b');
    expect(s!.title).not.toMatch(/\?|undefined|\[object/);
  });

  it('checks peers: entries name a known public set', () => {
    const r = compileRules(
      [{ file: 'r.yaml', doc: { rules: [rule({ condition: { field: 'verb', eq: 'get' }, peers: ['sigma:abc', 'nvd:CVE-1'] })] } }],
      [schema],
    );
    expect(r.problems.map(formatProblem)).toEqual([
      'r.yaml: test-rule: peers: peers must be a list of "<set>:<rule id or name>" with set one of sigma, falco, stratus, elastic',
    ]);
  });

  it('reads derived fields that are lazy getters on a class', () => {
    class Lazy {
      calls = 0;
      get decision() {
        this.calls++;
        return 'forbid';
      }
    }
    const d = detector([
      {
        file: 'r.yaml',
        doc: {
          rules: [
            rule({
              id: 'lazy',
              condition: {
                all: [
                  { field: 'verb', eq: 'get' },
                  { field: 'decision', eq: 'forbid' },
                ],
              },
            }),
          ],
        },
      },
    ]);
    const lazy = new Lazy();
    expect(d.detect(ev({ verb: 'list' }, lazy))).toEqual([]);
    expect(lazy.calls).toBe(0); // the cheap raw test failed first: the getter never ran
    expect(d.detect(ev({ verb: 'get' }, lazy)).map((s) => s.rule.id)).toEqual(['lazy']);
  });

  it('skips events that carry no outcome yet', () => {
    const d = detector([{ file: 'r.yaml', doc: { rules: [rule({ id: 'any-get', condition: { field: 'verb', eq: 'get' } })] } }]);
    expect(d.detect({ ...ev({ verb: 'get' }), final: false })).toEqual([]);
  });
});
