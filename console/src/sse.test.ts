import { describe, expect, it } from 'vitest';
import { parseRoute } from './router';
import { SseParser } from './sse';

describe('SseParser', () => {
  it('assembles events split across chunks at any byte, with ids and the retry hint', () => {
    const text = 'retry: 5000\r\n\r\n: keep-alive\n\nevent: incident\nid: inc_1:2\ndata: {"a":\ndata: 1}\n\nevent: reset\ndata: {}\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser();
      const events = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      expect(events).toEqual([
        { event: 'incident', data: '{"a":\n1}', id: 'inc_1:2' },
        { event: 'reset', data: '{}', id: 'inc_1:2' },
      ]);
      expect(p.lastEventId).toBe('inc_1:2');
      expect(p.retryMs).toBe(5000);
    }
  });

  it('accepts CRLF and CR line ends, and ignores unknown fields and comments', () => {
    const p = new SseParser();
    expect(p.push('event: incident\r\nid: x\r\nfoo: bar\r\n: note\r\ndata: 1\r\n\r\ndata: 2\r\r\n')).toEqual([
      { event: 'incident', data: '1', id: 'x' },
      { event: 'message', data: '2', id: 'x' },
    ]);
  });

  it('keeps the last id for Last-Event-ID even from an event without data, and refuses an endless line', () => {
    const p = new SseParser();
    expect(p.push('id: 7\n\n')).toEqual([]);
    expect(p.lastEventId).toBe('7');
    expect(() => p.push('data: ' + 'x'.repeat(100), 50)).toThrow(/longer than 50/);
  });
});

describe('parseRoute', () => {
  it('maps the console URLs to pages, keeping the incident id', () => {
    expect(parseRoute('/')).toEqual({ page: 'incidents' });
    expect(parseRoute('/incidents/inc_85e13a31c940034a3f6d')).toEqual({ page: 'incident', id: 'inc_85e13a31c940034a3f6d' });
    expect(parseRoute('/signals')).toEqual({ page: 'signals' });
    expect(parseRoute('/rules')).toEqual({ page: 'rules' });
    expect(parseRoute('/system')).toEqual({ page: 'system' });
    expect(parseRoute('/nope')).toEqual({ page: 'not-found', path: '/nope' });
  });
});
