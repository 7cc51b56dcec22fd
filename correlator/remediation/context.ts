/**
 * What every planner receives: the incident with its root cause, the actor's legitimate API usage,
 * and the facts about the actor derived once by the entry point (planner.ts).
 */
import type { Incident, Remediation, TimelineEntry } from '../incident.js';
import { hasTrait, type KindTrait } from '../signal-kinds.js';
import type { PermissionUse } from '../ports.js';
import type { Ref } from './names.js';

export type { PermissionUse };

/** What the planner needs: the incident with its root cause, and the actor's legitimate API usage. */
export interface PlanInput {
  incident: Omit<Incident, 'remediations'>;
  /** Requests the actor made successfully and that were NOT part of the attack (its legitimate usage), as audit2rbac would collect. May be empty. */
  usage: PermissionUse[];
}

type IncidentData = PlanInput['incident'];

/** Facts shared by the planners, derived once from the input. */
export interface PlanContext {
  incident: IncidentData;
  usage: readonly PermissionUse[];
  /** The acting service account, when the actor is one and its names are safe. */
  sa?: Ref;
  /** The acting service account's `ns/name` when the actor is one whose names are unsafe. */
  rejectedSa?: string;
}

/** One planner per remediation kind; the list order is the order of the plan (planners/index.ts). */
export type Planner = (ctx: PlanContext) => Remediation[];

/** The timeline entries whose kind has the trait (allowed ones only, if asked). */
export function entriesWith(ctx: PlanContext, trait: KindTrait, allowedOnly = false): TimelineEntry[] {
  return ctx.incident.timeline.filter((e) => hasTrait(e.kind, trait) && (!allowedOnly || e.outcome === 'allowed'));
}

/** The actor's `ns/name` when it is a service account whose names were refused, for the rationale. */
export const rejectedActor = (ctx: PlanContext): string[] => (ctx.rejectedSa === undefined ? [] : [ctx.rejectedSa]);
