/**
 * node_exporter's textfile format (the Prometheus text exposition format, version 0.0.4): for each
 * metric a `# HELP` line, a `# TYPE` line, then its samples. Pure. Only gauges: every number here
 * is a state read now, and counters would have to survive between runs of `status`.
 */

export interface Gauge {
  name: string;
  help: string;
  /** No samples: the value is not known (e.g. no run has succeeded yet); HELP and TYPE still show. */
  samples: { labels?: Record<string, string>; value: number }[];
}

export function textfile(gauges: readonly Gauge[]): string {
  const lines: string[] = [];
  for (const gauge of gauges) {
    lines.push(`# HELP ${gauge.name} ${escapeHelp(gauge.help)}`, `# TYPE ${gauge.name} gauge`);
    for (const sample of gauge.samples)
      lines.push(`${gauge.name}${labelsOf(sample.labels)} ${sampleValue(sample.value)}`);
  }
  return `${lines.join('\n')}\n`;
}

function labelsOf(labels: Record<string, string> | undefined): string {
  const pairs = Object.entries(labels ?? {});
  if (pairs.length === 0) return '';
  return `{${pairs.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(',')}}`;
}

function sampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

// The format's own escapes: HELP text escapes \ and newline; label values also the double quote.
const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (text: string) => escapeHelp(text).replace(/"/g, '\\"');
