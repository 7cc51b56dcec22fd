import { describe, expect, it } from 'vitest';
import { compileCondition, compileRules } from './compile.js';
import { parseFieldPath } from './field-path.js';
import { closeFields, renderFieldsDoc, resolveField } from './fields.js';
import { formatProblem, type Problem } from './problems.js';
import type { SourceSchema } from './source-event.js';

const schema: SourceSchema = {
  name: 'k8s-audit',
  derived: ['status', 'crossNamespace', 'pod'],
  fields: [
    { name: 'verb', type: 'string', description: 'Kubernetes verb' },
    { name: 'objectRef.resource', type: 'string', description: 'Resource acted on' },
    { name: 'objectRef.namespace', type: 'string', description: 'Namespace of the object' },
    { name: 'user.username', type: 'string', description: 'Authenticated user' },
    { name: 'user.groups', type: 'string[]', description: 'Groups of the user' },
    { name: 'annotations.*', type: 'string', description: 'Annotations' },
    { name: 'requestObject.*', type: 'any', description: 'Request body' },
    { name: 'status', type: 'number', description: 'HTTP status code of the response' },
    { name: 'crossNamespace', type: 'boolean', description: 'A service account acted on another namespace' },
    { name: 'pod.hostPaths', type: 'string[]', description: 'Host paths mounted' },
  ],
};

const rule = (id: string, condition: unknown, extra: Record<string, unknown> = {}) => ({
  id,
  title: 'Test rule',
  description: 'For tests. False positives: none.',
  source: 'k8s-audit',
  severity: 'medium',
  kind: 'secret.read',
  mitre: ['T1552.007'],
  condition,
  ...extra,
});

const lint = (doc: unknown): string[] => compileRules([{ file: 'r.yaml', doc }], [schema]).problems.map(formatProblem);

describe('source field tables', () => {
  it('resolves exact rows, open maps, array indexes and intermediate objects', () => {
    const r = (p: string) => resolveField(schema, parseFieldPath(p));
    expect(r('verb')?.type).toBe('string');
    expect(r('annotations["authorization.k8s.io/decision"]')?.spec?.name).toBe('annotations.*');
    expect(r('requestObject.spec.containers[*].securityContext.privileged')?.type).toBe('any');
    expect(r('user.groups[0]')?.type).toBe('string[]');
    expect(r('objectRef')?.type).toBe('object');
    expect(r('annotations')?.type).toBe('object');
    expect(r('objectRef.resourse')).toBeUndefined();
    expect(r('labels.app')).toBeUndefined();
  });

  it('reports a field the source does not declare, with close matches', () => {
    const lines = lint({
      rules: [
        rule('unknown-field', {
          all: [
            { field: 'objectRef.resourse', eq: 'secrets' },
            { field: 'username', startswith: 'system:' },
          ],
        }),
      ],
    });
    expect(lines).toEqual([
      'r.yaml: unknown-field: condition.all[0].field: source k8s-audit has no field "objectRef.resourse"; did you mean objectRef.resource? docs/rule-fields.md lists the fields of each source',
      'r.yaml: unknown-field: condition.all[1].field: source k8s-audit has no field "username"; did you mean user.username? docs/rule-fields.md lists the fields of each source',
    ]);
    expect(closeFields(schema, parseFieldPath('objectref.namespac'))).toEqual(['objectRef.namespace']);
  });

  it('reports unknown fields in output templates, exceptions and macros', () => {
    const lines = lint({
      macros: [{ name: 'm', condition: { field: 'verbs', eq: 'get' } }],
      rules: [rule('elsewhere', { macro: 'm' }, { output: '{user.name} did it', exceptions: [{ name: 'x', condition: { field: 'user.usernam', eq: 'a' } }] })],
    });
    expect(lines).toHaveLength(3);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^r\.yaml: macro m: condition\.field: source k8s-audit has no field "verbs"; did you mean verb\?/),
        expect.stringMatching(/^r\.yaml: elsewhere: output: source k8s-audit has no field "user\.name"; did you mean user\.username/),
        expect.stringMatching(/^r\.yaml: elsewhere: exceptions\[0\]\.condition\.field: .*"user\.usernam"; did you mean user\.username/),
      ]),
    );
  });

  it('reports operators that do not fit the field type, and eq/in values of the wrong type', () => {
    const lines = lint({
      rules: [
        rule('mismatch', {
          all: [
            { field: 'status', startswith: '4' },
            { field: 'verb', gt: 3 },
            { field: 'crossNamespace', regex: 'true' },
            { field: 'crossNamespace', eq: 'true' },
            { field: 'status', in: [401, '403'] },
            { field: 'objectRef', eq: 'x' },
            { field: 'user.groups', contains: 'masters' },
          ],
        }),
      ],
    });
    expect(lines).toEqual([
      'r.yaml: mismatch: condition.all[0].startswith: startswith never holds for status: it is a number (HTTP status code of the response); use eq, in, exists, gt, gte, lt, lte',
      'r.yaml: mismatch: condition.all[1].gt: gt never holds for verb: it is a string (Kubernetes verb); use eq, in, contains, startswith, endswith, regex, cidr, exists',
      'r.yaml: mismatch: condition.all[2].regex: regex never holds for crossNamespace: it is a boolean (A service account acted on another namespace); use eq, in, exists',
      'r.yaml: mismatch: condition.all[3].eq: crossNamespace is a boolean: "true" (string) never equals it; write boolean values',
      'r.yaml: mismatch: condition.all[4].in: status is a number: "403" (string) never equals it; write number values',
      'r.yaml: mismatch: condition.all[5].eq: eq never holds for objectRef: it is an object; use exists',
    ]);
  });

  it('accepts every operator on any-typed fields, exists on every field, and string operators on string lists', () => {
    expect(
      lint({
        rules: [
          rule('fine', {
            all: [
              { field: 'requestObject.spec.replicas', gt: 3 },
              { field: 'requestObject.metadata.name', startswith: 'x' },
              { field: 'requestObject.data[*]', regex: '^a' },
              { field: 'objectRef', exists: true },
              { field: 'status', exists: true, gte: 400 },
              { field: 'pod.hostPaths', startswith: '/etc' },
              { field: 'annotations["a.b/c"]', eq: 'x' },
              { field: 'crossNamespace', in: [true] },
            ],
          }),
        ],
      }),
    ).toEqual([]);
  });

  it('does not check conditions over plain objects, which have no source', () => {
    const problems: Problem[] = [];
    compileCondition({ field: 'whatever.you.like', startswith: 'a' }, 'c.yaml', 'corr', 'where', problems);
    expect(problems).toEqual([]);
  });

  it('renders one table per source for docs/rule-fields.md', () => {
    const doc = renderFieldsDoc([schema]);
    expect(doc).toContain('## `k8s-audit`');
    expect(doc).toContain('| `status` | `number` | HTTP status code of the response (derived) |');
    expect(doc).toContain('| `annotations.*` | `string` | Annotations |');
  });
});
