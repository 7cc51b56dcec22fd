import { describe, expect, it } from 'vitest';
import { boundedRedactedCopy, redactText } from './redact.js';

describe('redaction', () => {
  it('removes tokens, credentials and keys from free text', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    expect(redactText(`token ${jwt} used`)).toBe('token [REDACTED] used');
    expect(redactText('Authorization: Bearer abcdefghijklmnop')).toBe('Authorization: Bearer [REDACTED]');
    expect(redactText('/api?watch=1&token=s3cr3tvalue&x=1')).toBe('/api?watch=1&token=[REDACTED]&x=1');
    expect(redactText('-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----')).toBe('[REDACTED]');
    expect(redactText('get pods in payments')).toBe('get pods in payments');
  });

  it('redacts secret keys and bounds strings, arrays, keys and depth', () => {
    const out = boundedRedactedCopy(
      { data: { password: 'x' }, name: 'n'.repeat(600), list: Array.from({ length: 20 }, (_, i) => i), deep: { a: { b: { c: { d: { e: { f: 1 } } } } } } },
      { maxString: 512, maxArray: 16, maxKeys: 32, maxDepth: 5 },
    ) as Record<string, unknown>;
    expect(out.data).toBe('[REDACTED]');
    expect(out.name).toMatch(/…\[\+88 chars\]$/);
    expect(out.list).toHaveLength(17);
    expect(JSON.stringify(out.deep)).toContain('[…]');
  });
});
