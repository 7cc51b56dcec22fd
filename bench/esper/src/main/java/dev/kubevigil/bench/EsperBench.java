package dev.kubevigil.bench;

import com.espertech.esper.common.client.EPCompiled;
import com.espertech.esper.common.client.configuration.Configuration;
import com.espertech.esper.common.client.util.EventUnderlyingType;
import com.espertech.esper.compiler.client.CompilerArguments;
import com.espertech.esper.compiler.client.EPCompilerProvider;
import com.espertech.esper.runtime.client.EPDeployment;
import com.espertech.esper.runtime.client.EPEventService;
import com.espertech.esper.runtime.client.EPRuntime;
import com.espertech.esper.runtime.client.EPRuntimeProvider;
import com.espertech.esper.runtime.client.EPStatement;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The Esper side of `npm run bench esper`, driven round by round so that its rounds interleave with
 * kubevigil's on a shared machine.
 *
 * <pre>java -Xmx2g -jar target/esper-bench.jar SIGNALS.tsv SUITES.epl WARMUP [shared|fresh]</pre>
 *
 * SIGNALS.tsv: one signal a line, tab-separated: ts, actor, kind, rule, outcome, severity,
 * namespace, resource, name (empty = null), in event-time order. SUITES.epl: EPL modules, each
 * introduced by a line "-- suite: NAME"; statements named "c:ID" are correlations whose output
 * rows are firings. Everything is read, compiled and deployed, and every suite run WARMUP times
 * (JIT), before "ready" is printed. Then each stdin line "run NAME" runs one timed round of that
 * suite and answers one JSON line {"name","seconds","firings":{id: n}}; "quit" ends. A round
 * times only sendEventBean and advanceTime (external clock: the signals' event time).
 *
 * Modes: "shared" deploys once per suite and separates rounds by shifting the stream one day
 * later, so every window, pattern and output condition of the previous round has expired (and
 * Esper's generated classes stay JIT-compiled); "fresh" deploys into a new runtime every round
 * (as the kubevigil side builds a new engine), paying class loading and cold code each round.
 */
public final class EsperBench {
  private static final long DAY = 86_400_000L;

  /** One suite: its compiled module, and in shared mode its runtime and firing counters. */
  private static final class Suite {
    final String name;
    final EPCompiled compiled;
    final Map<String, long[]> firings = new TreeMap<>();
    EPRuntime runtime;

    Suite(String name, EPCompiled compiled) {
      this.name = name;
      this.compiled = compiled;
    }
  }

  private static int uri;

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: esper-bench SIGNALS.tsv SUITES.epl WARMUP [shared|fresh]");
      System.exit(2);
    }
    Signal[] stream = readSignals(Path.of(args[0]));
    Map<String, String> modules = readSuites(Path.of(args[1]));
    int warmup = Integer.parseInt(args[2]);
    boolean fresh = args.length > 3 && args[3].equals("fresh");

    Configuration config = new Configuration();
    config.getCommon().addEventType("Signal", Signal.class);
    config.getCommon().getEventMeta().setDefaultEventRepresentation(EventUnderlyingType.OBJECTARRAY);
    config.getRuntime().getThreading().setInternalTimerEnabled(false);
    // One thread feeds the runtime, as one loop feeds one kubevigil engine.
    config.getRuntime().getExecution().setDisableLocking(true);

    Map<String, Suite> suites = new LinkedHashMap<>();
    for (Map.Entry<String, String> m : modules.entrySet()) {
      Suite suite = new Suite(m.getKey(), EPCompilerProvider.getCompiler().compile(m.getValue(), new CompilerArguments(config)));
      if (!fresh) suite.runtime = deploy(suite, config, stream);
      suites.put(suite.name, suite);
    }
    long[] shift = {0};
    for (int i = 0; i < warmup; i++) for (Suite suite : suites.values()) round(suite, config, stream, fresh, shift);
    System.out.println("ready");
    System.out.flush();

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null && !line.equals("quit")) {
      if (!line.startsWith("run ")) continue;
      Suite suite = suites.get(line.substring(4).trim());
      if (suite == null) {
        System.out.println("{\"error\":" + json("unknown suite " + line.substring(4)) + "}");
        System.out.flush();
        continue;
      }
      double seconds = round(suite, config, stream, fresh, shift);
      StringBuilder f = new StringBuilder("{");
      for (Map.Entry<String, long[]> e : suite.firings.entrySet()) {
        if (f.length() > 1) f.append(',');
        f.append(json(e.getKey())).append(':').append(e.getValue()[0]);
      }
      System.out.println("{\"name\":" + json(suite.name) + ",\"seconds\":" + seconds + ",\"firings\":" + f + "}}");
      System.out.flush();
    }
    for (Suite suite : suites.values()) if (suite.runtime != null) suite.runtime.destroy();
  }

  private static EPRuntime deploy(Suite suite, Configuration config, Signal[] stream) throws Exception {
    EPRuntime rt = EPRuntimeProvider.getRuntime("esper-bench-" + uri++, config);
    rt.initialize();
    rt.getEventService().clockExternal();
    rt.getEventService().advanceTime(stream[0].ts);
    suite.firings.clear();
    attach(rt.getDeploymentService().deploy(suite.compiled), suite.firings);
    return rt;
  }

  /** One round of a suite over the whole stream; returns the timed seconds. */
  private static double round(Suite suite, Configuration config, Signal[] stream, boolean fresh, long[] shift) throws Exception {
    EPRuntime rt;
    if (fresh) rt = deploy(suite, config, stream);
    else {
      // Every round is one day later than the last one of any suite: all state of the previous
      // round has expired. Expiring it is not part of the round.
      for (Signal s : stream) s.ts += DAY;
      shift[0] += DAY;
      rt = suite.runtime;
      rt.getEventService().advanceTime(stream[0].ts);
      for (long[] n : suite.firings.values()) n[0] = 0;
    }
    System.gc();
    double seconds = run(rt.getEventService(), stream);
    if (fresh) rt.destroy();
    return seconds;
  }

  /** The timed part: every signal in order, the clock advanced to its event time first. */
  private static double run(EPEventService events, Signal[] stream) {
    long t0 = System.nanoTime();
    long now = stream[0].ts;
    for (Signal s : stream) {
      if (s.ts != now) {
        now = s.ts;
        events.advanceTime(now);
      }
      events.sendEventBean(s, "Signal");
    }
    return (System.nanoTime() - t0) / 1e9;
  }

  /** Counts the output rows of every correlation statement (named "c:ID"). */
  private static void attach(EPDeployment deployment, Map<String, long[]> firings) {
    for (EPStatement st : deployment.getStatements()) {
      String name = st.getName();
      if (!name.startsWith("c:")) continue;
      long[] n = firings.computeIfAbsent(name.substring(2), k -> new long[1]);
      st.addListener((newEvents, oldEvents, statement, runtime) -> {
        if (newEvents != null) n[0] += newEvents.length;
      });
    }
  }

  private static Signal[] readSignals(Path path) throws Exception {
    Map<String, String> intern = new HashMap<>();
    List<Signal> out = new ArrayList<>();
    try (BufferedReader in = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.isEmpty()) continue;
        String[] f = line.split("\t", -1);
        String[] v = new String[9];
        for (int i = 1; i < 9; i++) v[i] = i < f.length && !f[i].isEmpty() ? intern.computeIfAbsent(f[i], k -> k) : null;
        out.add(new Signal(Long.parseLong(f[0]), v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]));
      }
    }
    return out.toArray(new Signal[0]);
  }

  private static Map<String, String> readSuites(Path path) throws Exception {
    Map<String, String> suites = new LinkedHashMap<>();
    String name = null;
    StringBuilder epl = new StringBuilder();
    for (String line : Files.readAllLines(path, StandardCharsets.UTF_8)) {
      if (line.startsWith("-- suite: ")) {
        if (name != null) suites.put(name, epl.toString());
        name = line.substring("-- suite: ".length()).trim();
        epl.setLength(0);
      } else epl.append(line).append('\n');
    }
    if (name != null) suites.put(name, epl.toString());
    return suites;
  }

  private static String json(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }
}
