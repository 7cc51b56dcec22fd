import { describe, expect, it } from 'vitest';
import { admissionPhraseOf, hasTrait, isSignalKind, KIND_TRAITS, phraseOf, SIGNAL_KINDS, type KindTrait, type SignalKind } from './signal-kinds.js';

const kinds = Object.keys(SIGNAL_KINDS) as SignalKind[];

describe('signal kinds as data', () => {
  it('gives every trait to at least one kind, so no trait is dead', () => {
    for (const trait of Object.keys(KIND_TRAITS) as KindTrait[])
      expect(
        kinds.filter((k) => hasTrait(k, trait)),
        trait,
      ).not.toHaveLength(0);
  });

  it('answers trait questions from the definitions, and reads a kind without a phrase as its name', () => {
    expect(hasTrait('pod.exec', 'needs-power')).toBe(true);
    expect(hasTrait('pod.exec', 'secret-read')).toBe(false);
    expect(phraseOf('pod.exec')).toBe('exec into pods');
    expect(phraseOf('secret.deleted')).toBe('deleting secrets');
    // A refusal reads as what was refused (its target), so it has no phrase of its own.
    expect(phraseOf('rbac.denied')).toBe('rbac.denied');
    expect(admissionPhraseOf('admission.denied')).toBe('a privileged pod');
    expect(admissionPhraseOf('pod.hostpath')).toBe(phraseOf('pod.hostpath'));
  });

  it('gives every kind a phrase, so no sentence shows a raw kind name, except the refusals that read as their target', () => {
    const without = Object.keys(SIGNAL_KINDS).filter((k) => phraseOf(k as SignalKind) === k);
    expect(without).toEqual(['rbac.denied', 'admission.denied']);
  });

  it('treats a kind this version does not know (an old stored timeline) as having no traits', () => {
    const old = 'pod.removed_kind' as SignalKind;
    expect(isSignalKind(old)).toBe(false);
    expect(hasTrait(old, 'needs-power')).toBe(false);
    expect(phraseOf(old)).toBe('pod.removed_kind');
  });
});
