/**
 * One run: params, metrics with a small history chart, tags, artifacts (images
 * previewed), input data, the cell source and the error; "Go to cell" opens the notebook
 * at the cell that made the run, "Open in a tab" shows the same view in the main area,
 * where it has room. Long names wrap; an estimator's params show short names (`C`, not
 * `model.logistic__C`) with the full key on hover.
 */
import {
  api,
  fetchArtifact,
  IArtifact,
  IDataPreview,
  IDatasetInput,
  IRunDetail
} from '../api';
import {
  formatBytes,
  formatDateTime,
  formatDuration,
  formatMetric,
  formatTime,
  formatValue,
  h,
  notice,
  saveBlob,
  sparkline,
  statusBadge
} from '../dom';
import { breakable, owner, shortNames } from '../names';
import { NotebookBridge } from '../notebook';
import { isRasterType, RasterPreviews } from '../preview';

const PREVIEW_LIMIT = 8 * 1024 * 1024;

export interface IRunDetailOptions {
  /** Offer "Open in a tab", which calls this with the run's id. */
  openInTab?: (runId: string) => void;
  /** Shown in a main-area tab: no way back to a list. */
  inTab?: boolean;
  /** Called with each version of the run it shows (a tab names itself after it). */
  loaded?: (run: IRunDetail) => void;
}

export class RunDetailView {
  readonly node: HTMLElement;
  private readonly body: HTMLElement;
  private runId: string | null = null;
  private run: IRunDetail | null = null;
  private signature = '';
  private readonly previews = new RasterPreviews();

  constructor(
    private readonly bridge: NotebookBridge,
    back: () => void,
    private readonly options: IRunDetailOptions = {}
  ) {
    const backButton = h(
      'button',
      { class: 'jp-mlops-button jp-mlops-back', title: 'Back to the list of runs' },
      '‹ Runs'
    );
    backButton.addEventListener('click', () => {
      this.previews.clear();
      back();
    });
    this.body = h('div', { class: 'jp-mlops-detail-body' });
    this.node = h(
      'div',
      { class: 'jp-mlops-detail jp-mlops-scroll' },
      options.inTab ? null : h('div', { class: 'jp-mlops-detail-nav' }, backButton),
      this.body
    );
  }

  show(runId: string): void {
    if (runId !== this.runId) {
      this.previews.clear();
      this.runId = runId;
      this.run = null;
      this.signature = '';
      this.body.replaceChildren(notice('Loading…'));
    }
  }

  async refresh(): Promise<void> {
    if (!this.runId || (this.run && this.run.status !== 'RUNNING')) {
      return; // a finished run does not change
    }
    const runId = this.runId;
    let run: IRunDetail;
    try {
      run = await api.run(runId);
    } catch (error) {
      if (runId === this.runId) {
        this.body.replaceChildren(notice((error as Error).message, 'error'));
        this.run = null;
        this.runId = null;
      }
      return;
    }
    if (runId !== this.runId) {
      return;
    }
    const signature = JSON.stringify({ ...run, now: 0 });
    this.run = run;
    if (signature !== this.signature) {
      this.signature = signature;
      this.render(run);
      this.options.loaded?.(run);
    }
  }

  private render(run: IRunDetail): void {
    const duration =
      run.status === 'RUNNING'
        ? `${formatDuration(run.now - run.start_time)} so far`
        : formatDuration(run.duration_s);
    const goToCell = h(
      'button',
      { class: 'jp-mlops-button jp-mlops-primary jp-mlops-goto' },
      'Go to cell'
    );
    if (!run.cell_id || (!run.notebook_path && !run.kernel_id)) {
      goToCell.disabled = true;
      goToCell.title = run.cell_id
        ? 'The notebook of this run is not under the server root.'
        : 'This run was not started from a notebook cell.';
    } else {
      const path = run.notebook_path;
      const cellId = run.cell_id;
      const kernelId = run.kernel_id ?? null;
      goToCell.title = path
        ? `Open ${path} at the cell that made this run`
        : 'Open the notebook of the kernel that made this run, at its cell';
      goToCell.addEventListener(
        'click',
        () => void this.bridge.goToCell(path, cellId, kernelId)
      );
    }
    const openInTab = this.options.openInTab;
    const tabButton = openInTab
      ? h(
          'button',
          {
            class: 'jp-mlops-button jp-mlops-open-tab',
            title: 'Show this run in a tab of the main area, where it has room'
          },
          'Open in a tab'
        )
      : null;
    tabButton?.addEventListener('click', () => openInTab!(run.run_id));
    const sections: HTMLElement[] = [
      h(
        'div',
        { class: 'jp-mlops-detail-head' },
        h(
          'div',
          { class: 'jp-mlops-title-row' },
          statusBadge(run.status),
          h('h3', { class: 'jp-mlops-detail-title' }, run.name ?? '(unnamed run)')
        ),
        h(
          'dl',
          { class: 'jp-mlops-facts' },
          ...fact('Experiment', run.experiment),
          ...fact('Run id', run.run_id),
          ...fact('Child of', run.parent_run_id),
          ...fact(
            'Started',
            formatTime(run.start_time),
            formatDateTime(run.start_time)
          ),
          ...fact('Duration', duration),
          ...fact(
            'Cell',
            run.notebook_name
              ? `${run.notebook_name} [${run.execution_count ?? ' '}]`
              : run.execution_count !== null
                ? `[${run.execution_count}]`
                : null
          )
        ),
        h('div', { class: 'jp-mlops-actions' }, goToCell, tabButton)
      )
    ];
    if (run.error || run.error_type) {
      sections.push(
        section(
          'Error',
          h(
            'div',
            { class: 'jp-mlops-error' },
            h('strong', {}, run.error_type ?? 'Error'),
            run.error ? `: ${run.error}` : ''
          ),
          run.traceback
            ? h(
                'details',
                { class: 'jp-mlops-traceback' },
                h('summary', {}, 'Traceback'),
                h('pre', {}, run.traceback)
              )
            : null
        )
      );
    }
    sections.push(this.metrics(run), this.params(run));
    if (Object.keys(run.tags).length) {
      sections.push(section('Tags', table(Object.entries(run.tags))));
    }
    if (run.artifacts.length) {
      sections.push(
        section(
          'Artifacts',
          h(
            'ul',
            { class: 'jp-mlops-artifacts' },
            ...run.artifacts.map(a => this.artifact(a))
          )
        )
      );
    }
    if (run.inputs.length) {
      sections.push(
        section(
          'Data',
          h(
            'ul',
            { class: 'jp-mlops-inputs' },
            ...run.inputs.map(d => this.input(run.run_id, d))
          )
        )
      );
    }
    if (run.source) {
      sections.push(
        section('Cell source', h('pre', { class: 'jp-mlops-source' }, run.source))
      );
    }
    this.body.replaceChildren(...sections);
  }

  private metrics(run: IRunDetail): HTMLElement {
    if (!run.metrics.length) {
      return section('Metrics', notice('No metrics.'));
    }
    const rows = run.metrics.map(metric =>
      h(
        'tr',
        { class: 'jp-mlops-metric', 'data-key': metric.key },
        h('th', { scope: 'row', title: metric.key }, breakable(metric.key)),
        h(
          'td',
          { class: 'jp-mlops-num' },
          formatMetric(metric.value, metric.nonfinite)
        ),
        h(
          'td',
          { class: 'jp-mlops-spark' },
          metric.history.length > 1 ? sparkline(metric.history) : null,
          metric.steps > 1
            ? h('span', { class: 'jp-mlops-steps' }, `${metric.steps} steps`)
            : null
        )
      )
    );
    return section(
      'Metrics',
      h('table', { class: 'jp-mlops-table' }, h('tbody', {}, ...rows))
    );
  }

  private params(run: IRunDetail): HTMLElement {
    const entries = Object.entries(run.params);
    if (!entries.length) {
      return section('Params', notice('No params.'));
    }
    // The cell's own settings first; each estimator's nested get_params() folded away
    // under the variable it was read from, by short names.
    const own = entries.filter(([key]) => !key.includes('.'));
    const owners = new Map<string, [string, unknown][]>();
    for (const entry of entries.filter(([key]) => key.includes('.'))) {
      const name = owner(entry[0]);
      owners.set(name, [...(owners.get(name) ?? []), entry]);
    }
    const groups = Array.from(owners.entries()).map(([name, nested]) => {
      const short = shortNames(nested.map(([key]) => key));
      return h(
        'details',
        {
          class: 'jp-mlops-nested',
          'data-owner': name,
          open: own.length === 0 && owners.size === 1
        },
        h(
          'summary',
          { title: `Params of ${name}, read with get_params()` },
          `${name}: estimator params (${nested.length})`
        ),
        table(
          nested.map(([key, v]) => [short.get(key) ?? key, formatValue(v), key]),
          'jp-mlops-params'
        )
      );
    });
    return section(
      'Params',
      own.length
        ? table(
            own.map(([k, v]) => [k, formatValue(v)]),
            'jp-mlops-params'
          )
        : null,
      ...groups
    );
  }

  /**
   * An input of the run; opening it fetches the first rows of its kept bytes, shown as
   * text in a table (data-preview says loaded, not-kept or failed).
   */
  private input(runId: string, input: IDatasetInput): HTMLElement {
    const item = h(
      'details',
      {
        class: 'jp-mlops-input',
        'data-name': input.name,
        'data-fingerprint': input.fingerprint
      },
      h(
        'summary',
        { title: `fingerprint ${input.fingerprint}` },
        `${input.name} (${input.role}) · ${input.kind} ${input.shape.join(' × ')} · ${input.fingerprint.slice(0, 12)}`
      )
    );
    item.addEventListener('toggle', () => {
      if (!item.open || item.dataset.preview) {
        return;
      }
      item.dataset.preview = 'loading';
      api.dataPreview(runId, input.fingerprint).then(
        preview => {
          item.dataset.preview = preview.kept ? 'loaded' : 'not-kept';
          item.appendChild(previewTable(preview));
        },
        error => {
          item.dataset.preview = 'failed';
          item.appendChild(notice((error as Error).message, 'error'));
        }
      );
    });
    return item;
  }

  private artifact(artifact: IArtifact): HTMLElement {
    const download = h(
      'button',
      { class: 'jp-mlops-link', title: `Download ${artifact.name}` },
      artifact.name
    );
    download.addEventListener('click', async () => {
      const blob = await fetchArtifact(artifact.sha256);
      saveBlob(blob, artifact.name.split('/').pop() || artifact.sha256);
    });
    const item = h(
      'li',
      { class: 'jp-mlops-artifact' },
      h(
        'div',
        { class: 'jp-mlops-artifact-line' },
        download,
        h(
          'span',
          { class: 'jp-mlops-muted' },
          `${artifact.kind} · ${formatBytes(artifact.size)}`
        )
      )
    );
    if (isRasterType(artifact.media_type) && artifact.size <= PREVIEW_LIMIT) {
      this.preview(item, artifact);
    }
    return item;
  }

  /**
   * The image under an artifact, once its bytes proved to be a raster image. The item's
   * data-preview says how far it got: loading, shown, refused (not a PNG, JPEG, GIF or
   * WebP by its first bytes), broken (the browser could not decode it) or failed (fetch).
   */
  private preview(item: HTMLElement, artifact: IArtifact): void {
    const noPreview = (state: string, why: string) => {
      item.dataset.preview = state;
      item.appendChild(h('div', { class: 'jp-mlops-muted' }, `No preview: ${why}`));
    };
    item.dataset.preview = 'loading';
    this.previews.url(artifact.sha256, () => fetchArtifact(artifact.sha256)).then(
      url => {
        if (!url) {
          noPreview('refused', 'the bytes are not a PNG, JPEG, GIF or WebP image.');
          return;
        }
        item.dataset.preview = 'shown';
        const image = h('img', {
          class: 'jp-mlops-preview',
          alt: artifact.name,
          src: url,
          onerror: () => {
            image.remove();
            noPreview('broken', 'the image cannot be decoded.');
          }
        });
        item.appendChild(image);
      },
      () => {
        item.dataset.preview = 'failed';
      }
    );
  }
}

/** The first rows of an input, every cell as text. */
function previewTable(preview: IDataPreview): HTMLElement {
  const shown = preview.rows.length;
  const caption =
    preview.note ??
    (preview.total_rows !== null
      ? `First ${shown} of ${preview.total_rows} rows`
      : `First ${shown} lines`);
  return h(
    'div',
    { class: 'jp-mlops-data-preview' },
    h('div', { class: 'jp-mlops-muted' }, caption),
    preview.rows.length
      ? h(
          'table',
          { class: 'jp-mlops-table jp-mlops-preview-rows' },
          h(
            'thead',
            {},
            h('tr', {}, ...preview.columns.map(c => h('th', { scope: 'col' }, c)))
          ),
          h(
            'tbody',
            {},
            ...preview.rows.map(row => h('tr', {}, ...row.map(v => h('td', {}, v))))
          )
        )
      : null
  );
}

function section(title: string, ...content: (HTMLElement | null)[]): HTMLElement {
  return h(
    'section',
    { class: 'jp-mlops-section' },
    h('h4', { class: 'jp-mlops-section-title' }, title),
    ...content
  );
}

function fact(label: string, value: string | null, title?: string): HTMLElement[] {
  if (value === null || value === '') {
    return [];
  }
  return [h('dt', {}, label), h('dd', { title: title || value }, value)];
}

/** Rows of [shown key, value, the full key when the shown one is short]. */
function table(
  rows: ([string, string] | [string, string, string])[],
  className = ''
): HTMLElement {
  return h(
    'table',
    { class: `jp-mlops-table ${className}` },
    h(
      'tbody',
      {},
      ...rows.map(([key, value, full]) =>
        h(
          'tr',
          { 'data-key': full ?? key },
          h('th', { scope: 'row', title: full ?? key }, breakable(key)),
          h('td', { title: value }, value)
        )
      )
    )
  );
}
