/** The planners, in the order of the plan. */
import type { Planner } from '../context.js';
import { admissionPolicy } from './admission-policy.js';
import { deleteWorkload } from './delete-workload.js';
import { isolateWorkload } from './isolate-workload.js';
import { leastPrivilegeRole } from './least-privilege-role.js';
import { meshAuthorizationPolicy } from './mesh-authorization-policy.js';
import { meshMtlsStrict } from './mesh-mtls-strict.js';
import { removeBinding } from './remove-binding.js';
import { rotateCredentials } from './rotate-credentials.js';
import { tightenRole } from './tighten-role.js';

// Contain (cut the pod off, shield the next target), remove access (the bindings, the role that let
// the actor write one, the enabler's replacement, then the pod and the stolen credentials, which
// would be re-obtained while the binding stands), then harden admission.
export const PLANNERS: readonly Planner[] = [
  isolateWorkload,
  meshMtlsStrict,
  meshAuthorizationPolicy,
  removeBinding,
  tightenRole,
  leastPrivilegeRole,
  deleteWorkload,
  rotateCredentials,
  admissionPolicy,
];
