import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { applyV8Flags, THROUGHPUT_FLAG } from './v8-flags.js';

describe('applyV8Flags', () => {
  it('sets each flag once per process, however many kubevigils the process serves', () => {
    const set: string[] = [];
    const record = (f: string) => set.push(f);
    expect(applyV8Flags(['--test-flag-a', '--test-flag-b'], record)).toEqual(['--test-flag-a', '--test-flag-b']);
    expect(applyV8Flags(['--test-flag-b', '--test-flag-c'], record)).toEqual(['--test-flag-c']);
    expect(set).toEqual(['--test-flag-a', '--test-flag-b', '--test-flag-c']);
  });

  it('documents a throughput flag this Node knows', () => {
    // V8 lists the flags it knows; an unknown one would only print a line, so check it is there.
    const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(options).toContain(THROUGHPUT_FLAG);
  });
});
