import { describe, expect, it } from 'vitest';
import { compileGetter, FieldPathError, parseFieldPath } from './field-path.js';

describe('field paths', () => {
  it('parses dotted keys, quoted keys, indexes and wildcards', () => {
    expect(parseFieldPath('a.b')).toEqual([{ key: 'a' }, { key: 'b' }]);
    expect(parseFieldPath('annotations["authorization.k8s.io/reason"]')).toEqual([{ key: 'annotations' }, { key: 'authorization.k8s.io/reason' }]);
    expect(parseFieldPath("x['y'].z[0][*].w")).toEqual([{ key: 'x' }, { key: 'y' }, { key: 'z' }, { index: 0 }, { wildcard: true }, { key: 'w' }]);
  });

  it.each(['', 'a.', 'a..b', 'a[', 'a[x]', 'a b', '.a'])('rejects %j with the position', (p) => {
    expect(() => parseFieldPath(p)).toThrow(FieldPathError);
  });

  it('reads values and fans out over wildcards, ignoring missing steps', () => {
    const get = compileGetter(parseFieldPath('spec.containers[*].ports[*].hostPort'));
    const obj = { spec: { containers: [{ ports: [{ hostPort: 80 }, {}] }, {}, { ports: [{ hostPort: 443 }] }] } };
    expect(get(obj)).toEqual([80, 443]);
    expect(get({ spec: {} })).toBeUndefined();
    expect(compileGetter(parseFieldPath('a.b.c'))({ a: { b: 'str' } })).toBeUndefined();
    expect(compileGetter(parseFieldPath('a[1]'))({ a: ['x', 'y'] })).toBe('y');
    // Own properties only: the prototype is never reachable from a rule.
    expect(compileGetter(parseFieldPath('a.constructor'))({ a: {} })).toBeUndefined();
  });
});
