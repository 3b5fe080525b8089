/**
 * Compare: the runs picked in the Runs tab, or a sweep's trials, at a glance. Parallel
 * coordinates over the params that vary and the metrics, the ranking metric against one
 * param with the params ranked by how much they moved it, and the table of one row a run,
 * the values that differ from the best run's tinted. SVG and text nodes only.
 */
import { api, ICompare, ICompareRun } from '../api';
import { formatMetric, formatValue, h, notice, svg } from '../dom';
import { IPanelHost, IView } from './view';

const MAX_AXES = 24;
const METRIC_AXES = 4;
const TABLE_ROWS = 100;
const SUMMARIES = ['latest', 'min', 'max'] as const;
type Summary = (typeof SUMMARIES)[number];
const BEST = '#d62728';

/** What the view compares: picked runs, or a sweep (a parent and its children). */
export interface ICompareTarget {
  runs: string[];
  parent?: string;
  label?: string;
  /** A filter in search_runs' syntax: the runs it finds (in this experiment, if any). */
  filter?: string;
  experiment?: string;
}

export class CompareView implements IView {
  readonly node: HTMLElement;
  private readonly head: HTMLElement;
  private readonly body: HTMLElement;
  private readonly metricSelect: HTMLSelectElement;
  private readonly summarySelect: HTMLSelectElement;
  private readonly paramSelect: HTMLSelectElement;
  private target: ICompareTarget = { runs: [] };
  private signature = '';
  private data: ICompare | null = null;

  constructor(private readonly host: IPanelHost) {
    this.metricSelect = h('select', {
      class: 'jp-mlops-select',
      'aria-label': 'Ranking metric'
    });
    this.summarySelect = h(
      'select',
      { class: 'jp-mlops-select', 'aria-label': 'Value of each metric' },
      ...SUMMARIES.map(s => h('option', { value: s }, s))
    );
    this.paramSelect = h('select', {
      class: 'jp-mlops-select',
      'aria-label': 'Param of the scatter'
    });
    for (const select of [this.metricSelect, this.summarySelect]) {
      select.addEventListener('change', () => {
        this.signature = '';
        this.host.requestRefresh();
      });
    }
    this.paramSelect.addEventListener('change', () => this.draw());
    this.head = h('div', { class: 'jp-mlops-compare-head' });
    this.body = h('div', { class: 'jp-mlops-compare-body' });
    this.node = h(
      'div',
      { class: 'jp-mlops-view jp-mlops-compare' },
      h(
        'div',
        { class: 'jp-mlops-toolbar-row' },
        this.metricSelect,
        this.summarySelect,
        this.paramSelect
      ),
      this.head,
      h('div', { class: 'jp-mlops-scroll' }, this.body)
    );
    this.draw();
  }

  /** Compare these runs (or this sweep) from now on. */
  show(target: ICompareTarget): void {
    this.target = target;
    this.signature = '';
    this.data = null;
    this.metricSelect.replaceChildren();
    this.paramSelect.replaceChildren();
    this.head.replaceChildren();
    this.body.replaceChildren(notice('Loading…'));
  }

  async refresh(): Promise<void> {
    const { runs, parent, filter, experiment } = this.target;
    if (!parent && !filter && runs.length === 0) {
      this.data = null;
      this.draw();
      return;
    }
    if (this.data && this.signature && !this.data.running) {
      return; // nothing compared still runs: ask again only when the choice changes
    }
    const data = await api.compare({
      runs: parent || filter ? undefined : runs.join(','),
      parent,
      filter,
      experiment: filter ? experiment : undefined,
      metric: this.metricSelect.value || undefined,
      summary: this.summarySelect.value
    });
    const signature = JSON.stringify(data);
    if (signature === this.signature) {
      return;
    }
    this.signature = signature;
    this.data = data;
    this.fillSelects(data);
    this.draw();
  }

  private fillSelects(data: ICompare): void {
    const fill = (select: HTMLSelectElement, keys: string[], chosen: string | null) => {
      const have = Array.from(select.options).map(o => o.value);
      if (JSON.stringify(have) !== JSON.stringify(keys)) {
        select.replaceChildren(...keys.map(k => h('option', { value: k }, k)));
      }
      if (chosen !== null && keys.includes(chosen)) {
        select.value = chosen;
      }
      select.title = `${select.getAttribute('aria-label')}: ${select.value}`;
    };
    fill(this.metricSelect, data.metrics, data.metric);
    const param = this.paramSelect.value;
    fill(this.paramSelect, data.params, data.params.includes(param) ? param : data.params[0] ?? null);
  }

  private draw(): void {
    const data = this.data;
    if (!data) {
      this.head.replaceChildren();
      this.body.replaceChildren(
        notice(
          'Pick runs in the Runs tab (their check boxes, or Ctrl-click) and press ' +
            'Compare, or press Compare on a sweep.'
        )
      );
      return;
    }
    if (data.runs.length === 0) {
      this.head.replaceChildren();
      this.body.replaceChildren(notice('None of these runs is in the store any more.'));
      return;
    }
    const summary = (this.summarySelect.value || 'latest') as Summary;
    const chart = new Chart(data, summary);
    const best = chart.best;
    this.head.replaceChildren(
      h('b', {}, `${data.runs.length.toLocaleString()} runs`),
      this.target.label ? ` of ${this.target.label}` : '',
      data.more ? ` (${data.more.toLocaleString()} more not compared)` : '',
      data.metric ? ` · ranked by ${data.metric} (${summary}, ${data.direction})` : '',
      best
        ? h(
            'span',
            { class: 'jp-mlops-compare-best' },
            ` · best ${best.name ?? best.run_id.slice(0, 8)}: ` +
              formatMetric(chart.value(best, data.metric))
          )
        : ''
    );
    this.body.replaceChildren(
      h('div', { class: 'jp-mlops-compare-chart' }, chart.parallel()),
      h(
        'div',
        { class: 'jp-mlops-compare-row' },
        chart.scatter(this.paramSelect.value || null),
        chart.importance(this.paramSelect.value || null)
      ),
      chart.table()
    );
  }
}

/** Where a value sits on an axis in [0, 1]: linear, log over three decades, or choices. */
class Axis {
  readonly numeric: boolean;
  readonly log: boolean = false;
  readonly labels: [string, string];
  private low = 0;
  private high = 1;
  private readonly choices: string[] = [];

  constructor(
    readonly name: string,
    values: unknown[]
  ) {
    const present = values.filter(v => v !== null && v !== undefined);
    this.numeric =
      present.length > 0 &&
      present.every(v => typeof v === 'number' && isFinite(v as number));
    if (this.numeric) {
      const numbers = present as number[];
      let low = Math.min(...numbers);
      let high = Math.max(...numbers);
      this.labels = [formatMetric(low), formatMetric(high)];
      this.log = low > 0 && high / low >= 1000;
      if (this.log) {
        low = Math.log10(low);
        high = Math.log10(high);
      }
      this.low = low;
      this.high = high === low ? low + 1 : high;
    } else {
      this.choices = Array.from(new Set(present.map(formatValue))).sort();
      this.labels = [this.choices[0] ?? '', this.choices[this.choices.length - 1] ?? ''];
    }
  }

  at(value: unknown): number | null {
    if (value === null || value === undefined) {
      return null;
    }
    if (this.numeric) {
      if (typeof value !== 'number' || !isFinite(value) || (this.log && value <= 0)) {
        return null;
      }
      const v = this.log ? Math.log10(value) : value;
      return (v - this.low) / (this.high - this.low);
    }
    const index = this.choices.indexOf(formatValue(value));
    if (index < 0) {
      return null;
    }
    return this.choices.length === 1 ? 0.5 : index / (this.choices.length - 1);
  }
}

function cut(text: string, size = 14): string {
  return text.length <= size ? text : `${text.slice(0, size - 1)}…`;
}

function label(
  x: number,
  y: number,
  text: string,
  anchor = 'middle',
  size = 10,
  full?: string
): SVGElement {
  const element = svg('text', {
    x: x.toFixed(1),
    y: y.toFixed(1),
    'font-size': size,
    'text-anchor': anchor,
    class: 'jp-mlops-chart-label'
  });
  if (full !== undefined && full !== text) {
    const title = svg('title', {});
    title.textContent = full;
    element.appendChild(title);
  }
  element.appendChild(document.createTextNode(text));
  return element;
}

function titled(element: SVGElement, text: string): SVGElement {
  const title = svg('title', {});
  title.textContent = text;
  element.appendChild(title);
  return element;
}

function shade(t: number): string {
  const low = [158, 202, 225];
  const high = [8, 48, 107];
  const [r, g, b] = low.map((a, i) => Math.round(a + (high[i] - a) * t));
  return `rgba(${r},${g},${b},${(0.25 + 0.5 * t).toFixed(2)})`;
}

/** The charts of one answer, for one choice of summary. */
class Chart {
  readonly best: ICompareRun | null;
  private readonly index: number;
  private readonly goodness = new Map<string, number>();

  constructor(
    private readonly data: ICompare,
    summary: Summary
  ) {
    this.index = SUMMARIES.indexOf(summary);
    const metric = data.metric;
    const scored = data.runs
      .map(run => [run, metric ? this.value(run, metric) : null] as const)
      .filter(([, v]) => v !== null) as [ICompareRun, number][];
    const sign = data.direction === 'maximize' ? 1 : -1;
    let best: ICompareRun | null = null;
    let bestValue = -Infinity;
    for (const [run, v] of scored) {
      if (sign * v > bestValue) {
        bestValue = sign * v;
        best = run;
      }
    }
    this.best = best;
    if (scored.length) {
      const values = scored.map(([, v]) => v);
      const low = Math.min(...values);
      const high = Math.max(...values);
      const span = high - low || 1;
      for (const [run, v] of scored) {
        this.goodness.set(run.run_id, sign > 0 ? (v - low) / span : (high - v) / span);
      }
    }
  }

  value(run: ICompareRun, metric: string | null): number | null {
    if (!metric) {
      return null;
    }
    const triple = run.metrics[metric];
    return triple ? triple[this.index] : null;
  }

  parallel(): SVGElement | HTMLElement {
    const { data } = this;
    const metric = data.metric;
    const metrics = data.metrics.filter(k => k !== metric).slice(0, METRIC_AXES - 1);
    if (metric) {
      metrics.push(metric);
    }
    const params = data.params.slice(0, MAX_AXES - metrics.length);
    const axes = [
      ...params.map(key => {
        const values = data.runs.map(run => run.params[key]);
        return { axis: new Axis(key, values), values };
      }),
      ...metrics.map(key => {
        const values = data.runs.map(run => this.value(run, key));
        return { axis: new Axis(key, values), values };
      })
    ];
    if (axes.length < 2 || data.runs.length < 2) {
      return notice('Nothing varies between these runs to draw.');
    }
    const step = 90;
    const width = step * (axes.length - 1) + 80;
    const height = 230;
    const top = 34;
    const span = height - top - 22;
    const chart = svg('svg', {
      class: 'jp-mlops-compare-parallel',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': 'parallel coordinates of the runs'
    });
    const xs = axes.map((_, i) => 40 + i * step);
    axes.forEach(({ axis }, i) => {
      chart.appendChild(
        svg('line', { x1: xs[i], y1: top, x2: xs[i], y2: height - 22, class: 'jp-mlops-axis' })
      );
      chart.appendChild(label(xs[i], 12, cut(axis.name), 'middle', 10, axis.name));
      chart.appendChild(label(xs[i], 26, cut(axis.labels[1], 12), 'middle', 9, axis.labels[1]));
      chart.appendChild(
        label(xs[i], height - 8, cut(axis.labels[0], 12), 'middle', 9, axis.labels[0])
      );
    });
    const order = data.runs
      .map((_, i) => i)
      .sort(
        (a, b) =>
          (this.goodness.get(data.runs[a].run_id) ?? -1) -
          (this.goodness.get(data.runs[b].run_id) ?? -1)
      );
    const lines = document.createDocumentFragment();
    for (const i of order) {
      const run = data.runs[i];
      const points: string[] = [];
      axes.forEach(({ axis, values }, j) => {
        const at = axis.at(values[i]);
        if (at !== null) {
          points.push(`${xs[j]},${(top + (1 - at) * span).toFixed(1)}`);
        }
      });
      if (points.length < 2) {
        continue;
      }
      const isBest = run === this.best;
      const line = svg('polyline', {
        points: points.join(' '),
        fill: 'none',
        stroke: isBest ? BEST : shade(this.goodness.get(run.run_id) ?? 0),
        'stroke-width': isBest ? 2.5 : 1,
        'data-run-id': run.run_id
      });
      lines.appendChild(titled(line, run.name ?? run.run_id.slice(0, 8)));
    }
    chart.appendChild(lines);
    return chart;
  }

  scatter(param: string | null): SVGElement | HTMLElement {
    const { data } = this;
    const metric = data.metric;
    if (!param || !metric) {
      return notice('No param varies between these runs.');
    }
    const [width, height, pad] = [300, 190, 30];
    const xs = data.runs.map(run => run.params[param]);
    const ys = data.runs.map(run => this.value(run, metric));
    const xAxis = new Axis(param, xs);
    const yAxis = new Axis(metric, ys);
    const chart = svg('svg', {
      class: 'jp-mlops-compare-scatter',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': 'the metric against a param'
    });
    chart.appendChild(
      svg('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: 'jp-mlops-axis' })
    );
    chart.appendChild(svg('line', { x1: pad, y1: pad, x2: pad, y2: height - pad, class: 'jp-mlops-axis' }));
    chart.appendChild(label(2, 12, cut(`${metric} (${SUMMARIES[this.index]})`, 40), 'start'));
    chart.appendChild(
      label(width - 2, height - 4, cut(`${param}${xAxis.log ? ' (log)' : ''} →`, 40), 'end', 10, param)
    );
    chart.appendChild(label(pad, height - pad + 12, cut(xAxis.labels[0], 12), 'start', 9));
    chart.appendChild(label(width - pad, height - pad + 12, cut(xAxis.labels[1], 12), 'end', 9));
    chart.appendChild(label(pad - 2, pad + 4, cut(yAxis.labels[1], 8), 'end', 9));
    chart.appendChild(label(pad - 2, height - pad, cut(yAxis.labels[0], 8), 'end', 9));
    data.runs.forEach((run, i) => {
      const ax = xAxis.at(xs[i]);
      const ay = yAxis.at(ys[i]);
      if (ax === null || ay === null) {
        return;
      }
      const isBest = run === this.best;
      const dot = svg('circle', {
        cx: (pad + ax * (width - 2 * pad)).toFixed(1),
        cy: (pad + (1 - ay) * (height - 2 * pad)).toFixed(1),
        r: isBest ? 4 : 3,
        fill: isBest ? BEST : 'rgba(31,119,180,.6)'
      });
      chart.appendChild(
        titled(
          dot,
          `${run.name ?? run.run_id.slice(0, 8)}: ${param}=${formatValue(xs[i])}, ` +
            `${metric}=${formatMetric(ys[i])}`
        )
      );
    });
    return chart;
  }

  importance(chosen: string | null): HTMLElement {
    const { data } = this;
    const entries = Object.entries(data.importance).slice(0, 12);
    if (!entries.length || !data.metric) {
      return h('div');
    }
    return h(
      'div',
      {
        class: 'jp-mlops-compare-importance',
        title: '|Spearman ρ| for numbers, η for choices'
      },
      h('div', { class: 'jp-mlops-muted' }, `what moved ${data.metric}`),
      ...entries.map(([name, score]) =>
        h(
          'div',
          { class: 'jp-mlops-importance-row', 'data-param': name },
          h('code', { class: name === chosen ? 'jp-mod-chosen' : '', title: name }, cut(name, 24)),
          h('span', {
            class: 'jp-mlops-importance-bar',
            style: `width:${Math.round(score * 100)}px`
          }),
          score.toFixed(2)
        )
      )
    );
  }

  table(): HTMLElement {
    const { data, best } = this;
    const metric = data.metric;
    const params = data.params.slice(0, 20);
    const metrics = [
      ...(metric ? [metric] : []),
      ...data.metrics.filter(k => k !== metric)
    ].slice(0, 6);
    const sign = data.direction === 'maximize' ? -1 : 1;
    const rank = (run: ICompareRun) => {
      const v = this.value(run, metric);
      return v === null ? Infinity : sign * v;
    };
    const runs = [...data.runs].sort((a, b) => rank(a) - rank(b));
    const shown = runs.slice(0, TABLE_ROWS);
    const head = h(
      'tr',
      {},
      h('th', {}, 'run'),
      ...params.map(k => h('th', { title: k }, k)),
      ...metrics.map(k => h('th', { title: `${k} (${SUMMARIES[this.index]})` }, k))
    );
    const rows = shown.map(run => {
      const isBest = run === best;
      return h(
        'tr',
        {
          class: isBest ? 'jp-mlops-compare-best-row' : '',
          'data-run-id': run.run_id
        },
        h(
          'td',
          { title: run.run_id },
          h('span', { class: 'jp-mlops-dot', 'data-status': run.status }),
          ' ',
          run.name ?? run.run_id.slice(0, 8)
        ),
        ...params.map(k => {
          const text = run.params[k] === undefined ? '' : formatValue(run.params[k]);
          const differs =
            best !== null && !isBest && text !== formatValue(best.params[k] ?? '');
          return h('td', { class: differs ? 'jp-mlops-differs' : '', title: text }, text);
        }),
        ...metrics.map(k => h('td', { class: 'jp-mlops-number' }, formatMetric(this.value(run, k))))
      );
    });
    const more = runs.length - shown.length;
    return h(
      'div',
      { class: 'jp-mlops-compare-table-wrap' },
      h('table', { class: 'jp-mlops-compare-table' }, h('thead', {}, head), h('tbody', {}, ...rows)),
      more > 0 ? notice(`${more.toLocaleString()} more runs, not listed`) : null
    );
  }
}
