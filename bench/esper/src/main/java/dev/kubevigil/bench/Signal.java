package dev.kubevigil.bench;

/**
 * One kubevigil signal as the correlation rules see it: the fields their references, `where`,
 * `field` and grouping read, and nothing else. A JavaBean, so Esper compiles direct getter calls.
 */
public final class Signal {
  /** Event time, epoch milliseconds (shifted per round, see EsperBench). */
  long ts;
  final String actor;
  final String kind;
  final String rule;
  final String outcome;
  final String severity;
  final String ns;
  final String resource;
  final String name;

  Signal(long ts, String actor, String kind, String rule, String outcome, String severity, String ns, String resource, String name) {
    this.ts = ts;
    this.actor = actor;
    this.kind = kind;
    this.rule = rule;
    this.outcome = outcome;
    this.severity = severity;
    this.ns = ns;
    this.resource = resource;
    this.name = name;
  }

  public long getTs() {
    return ts;
  }

  public String getActor() {
    return actor;
  }

  public String getKind() {
    return kind;
  }

  public String getRule() {
    return rule;
  }

  public String getOutcome() {
    return outcome;
  }

  public String getSeverity() {
    return severity;
  }

  public String getNs() {
    return ns;
  }

  public String getResource() {
    return resource;
  }

  public String getName() {
    return name;
  }
}
