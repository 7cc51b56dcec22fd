/** Which Slack channels an incident goes to: every matching route, else the default channel. */
import type { Incident } from '../../correlator/incident.js';
import { severityRank } from '../../correlator/severity.js';
import type { SlackBotConfig, SlackRoute } from './config.js';

function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/** The namespaces an incident concerns: its blast radius and the actor's own. */
export function incidentNamespaces(inc: Incident): string[] {
  return [...new Set([...inc.blastRadius.namespaces, ...(inc.actor.namespace ? [inc.actor.namespace] : [])])];
}

/** True when the incident meets every condition of the route. */
export function routeMatches(route: SlackRoute, inc: Incident): boolean {
  if (route.minSeverity && severityRank(inc.severity) < severityRank(route.minSeverity)) return false;
  if (route.severity && inc.severity !== route.severity) return false;
  if (route.namespace !== undefined) {
    const re = glob(route.namespace);
    if (!incidentNamespaces(inc).some((ns) => re.test(ns))) return false;
  }
  return true;
}

/** The channels for an incident: those of every matching route, or the default channel when none matches. */
export function routeChannels(inc: Incident, slack: Pick<SlackBotConfig, 'routes' | 'defaultChannel'>): string[] {
  const matched = [...new Set(slack.routes.filter((r) => routeMatches(r, inc)).map((r) => r.channel))];
  if (matched.length > 0) return matched;
  return slack.defaultChannel ? [slack.defaultChannel] : [];
}

/** Every channel a configuration can route to. */
export function configuredChannels(slack: Pick<SlackBotConfig, 'routes' | 'defaultChannel'>): string[] {
  return [...new Set([...(slack.defaultChannel ? [slack.defaultChannel] : []), ...slack.routes.map((r) => r.channel)])];
}
