import { describe, expect, it } from 'vitest';
import { resourceActor } from '../connectors/otlp/normalize.js';

describe('the actor of a span resource', () => {
  it('is its pod, else the workload OTel names (k8s.deployment.name…) as a pod-style key the inventory resolves', () => {
    expect(resourceActor({ 'k8s.namespace.name': 'shop', 'k8s.pod.name': 'cart-7d9c-x', 'k8s.deployment.name': 'cart' })).toMatchObject({
      key: 'pod:shop/cart-7d9c-x',
    });
    expect(resourceActor({ 'k8s.namespace.name': 'shop', 'k8s.deployment.name': 'cart' })).toMatchObject({ key: 'pod:shop/cart', type: 'pod' });
    expect(resourceActor({ 'k8s.namespace.name': 'shop', 'k8s.statefulset.name': 'ledger' })).toMatchObject({ key: 'pod:shop/ledger' });
    // Without a namespace a workload name is not enough: the service name stands in.
    expect(resourceActor({ 'k8s.deployment.name': 'cart', 'service.name': 'cart' })).toMatchObject({ key: 'user:otel/cart', type: 'user' });
  });
});
