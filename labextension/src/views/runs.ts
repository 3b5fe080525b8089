/**
 * Runs: a paged, filtered list (status, name, experiment, start, duration, main metrics)
 * and, for the selected run, its details. Runs of different notebooks and kernels are
 * told apart: sorted by time, each kernel's runs sit under a line naming its notebook and
 * when it started; sorted otherwise, each run names its notebook.
 */
import { ServerConnection } from '@jupyterlab/services';

import { api, IRunPage, IRunSummary, Query, RUN_STATUSES } from '../api';
import {
  formatDateTime,
  formatDuration,
  formatMetric,
  formatTime,
  h,
  notice
} from '../dom';
import { breakable } from '../names';
import { NotebookBridge } from '../notebook';
import { RunDetailView } from './rundetail';
import { openRunTab } from './runtab';
import { IPanelHost, IView } from './view';

const PAGE_SIZE = 100;
// Child runs listed under an expanded parent; a search may have a thousand.
const CHILDREN_PAGE = 50;
// A filter that starts like "metrics.acc >" or "status =" is search_runs' filter syntax;
// anything else is plain text matched against names, experiments and run ids.
const ATTRIBUTES = [
  'status',
  'name',
  'run_name',
  'experiment',
  'start_time',
  'end_time',
  'duration_s',
  'execution_count',
  'run_id',
  'cell_id',
  'session_id'
];
const FILTER_SYNTAX = new RegExp(
  '^\\s*((metrics?|params?|tags?|attributes?)\\.\\S|' +
    `(${ATTRIBUTES.join('|')})\\s*(=|!=|<>|<|>|\\b(in|not|like|ilike|is)\\b))`,
  'i'
);

export class RunsView implements IView {
  readonly node: HTMLElement;
  private readonly listView: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly summary: HTMLElement;
  private readonly pickBar: HTMLElement;
  private readonly pager: HTMLElement;
  private readonly filterInput: HTMLInputElement;
  private readonly filterHint: HTMLElement;
  private readonly experimentSelect: HTMLSelectElement;
  private readonly statusSelect: HTMLSelectElement;
  private readonly sortSelect: HTMLSelectElement;
  private readonly detail: RunDetailView;
  private offset = 0;
  private signature = '';
  private selected: string | null = null;
  private debounce = 0;
  // Parents whose child runs are shown, and the children last fetched for each.
  private readonly expanded = new Set<string>();
  private children = new Map<string, IRunPage>();
  // Runs picked for the Compare tab (check boxes, or Ctrl-click), kept across pages.
  private readonly picked = new Set<string>();

  constructor(
    bridge: NotebookBridge,
    private readonly host: IPanelHost
  ) {
    this.filterInput = h('input', {
      class: 'jp-mlops-filter jp-mod-styled',
      type: 'search',
      placeholder: 'Text, or metrics.acc > 0.9',
      'aria-label': 'Filter runs',
      spellcheck: 'false'
    });
    this.filterInput.addEventListener('input', () => this.filterChanged());
    this.experimentSelect = h(
      'select',
      { class: 'jp-mlops-select', 'aria-label': 'Experiment' },
      h('option', { value: '' }, 'All experiments')
    );
    this.statusSelect = h(
      'select',
      { class: 'jp-mlops-select', 'aria-label': 'Status' },
      h('option', { value: '' }, 'Any status'),
      ...RUN_STATUSES.map(s => h('option', { value: s }, s.toLowerCase()))
    );
    this.sortSelect = h(
      'select',
      { class: 'jp-mlops-select', 'aria-label': 'Sort' },
      h('option', { value: 'start_time:desc' }, 'Newest first'),
      h('option', { value: 'start_time:asc' }, 'Oldest first'),
      h('option', { value: 'name:asc' }, 'Name'),
      h('option', { value: 'duration:desc' }, 'Longest first'),
      h('option', { value: 'status:asc' }, 'Status')
    );
    for (const select of [this.experimentSelect, this.statusSelect, this.sortSelect]) {
      select.addEventListener('change', () => {
        showChoice(select);
        this.filterChanged(0);
      });
      showChoice(select);
    }
    this.filterHint = h('div', { class: 'jp-mlops-filter-hint', hidden: true });
    this.summary = h('span', { class: 'jp-mlops-summary' });
    this.pickBar = h('span', { class: 'jp-mlops-pick-bar' });
    this.updatePickBar();
    this.list = h('ul', {
      class: 'jp-mlops-list jp-mlops-run-list',
      role: 'listbox',
      'aria-label': 'Runs'
    });
    this.list.addEventListener('click', event => this.clicked(event));
    this.list.addEventListener('keydown', event => this.keyed(event));
    this.pager = h('div', { class: 'jp-mlops-pager' });
    this.listView = h(
      'div',
      { class: 'jp-mlops-runs-list-view' },
      h(
        'div',
        { class: 'jp-mlops-toolbar' },
        this.filterInput,
        h(
          'div',
          { class: 'jp-mlops-toolbar-row' },
          this.experimentSelect,
          this.statusSelect,
          this.sortSelect
        ),
        this.filterHint
      ),
      h('div', { class: 'jp-mlops-list-head' }, this.summary, this.pickBar),
      h('div', { class: 'jp-mlops-scroll' }, this.list),
      this.pager
    );
    this.detail = new RunDetailView(bridge, () => this.back(), {
      openInTab: runId => openRunTab(bridge, runId)
    });
    this.detail.node.hidden = true;
    this.node = h(
      'div',
      { class: 'jp-mlops-view jp-mlops-runs' },
      this.listView,
      this.detail.node
    );
  }

  async refresh(): Promise<void> {
    if (this.selected) {
      await this.detail.refresh();
      return;
    }
    let page: IRunPage;
    try {
      page = await api.runs(this.query());
    } catch (error) {
      if (
        error instanceof ServerConnection.ResponseError &&
        error.response.status === 400
      ) {
        this.showHint(error.message);
        return;
      }
      throw error;
    }
    this.showHint(null);
    if (page.total > 0 && page.runs.length === 0 && this.offset > 0) {
      // The page emptied under us (runs deleted, filter narrowed): go to the last page.
      this.offset = Math.max(0, Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      this.host.requestRefresh();
      return;
    }
    this.updateExperiments(page.experiments);
    this.updateSortOptions(page.metric_keys.slice(0, 3));
    this.children = await this.fetchChildren(page);
    const running = page.runs.some(run => run.status === 'RUNNING');
    const signature = JSON.stringify([
      page.runs,
      page.total,
      page.metric_keys,
      page.offset,
      Array.from(this.children.entries())
    ]);
    if (signature !== this.signature || running) {
      this.signature = signature;
      this.render(page);
    }
  }

  /** The child runs of the expanded parents on this page, in the page's order. */
  private async fetchChildren(page: IRunPage): Promise<Map<string, IRunPage>> {
    const query = this.query();
    // Newest first lists a search's candidates backwards: children keep their order.
    const order = query.sort === 'start_time' ? 'asc' : query.order;
    const parents = page.runs.filter(
      run => run.children > 0 && this.expanded.has(run.run_id)
    );
    const pages = await Promise.all(
      parents.map(run =>
        api.runs({ parent: run.run_id, sort: query.sort, order, limit: CHILDREN_PAGE })
      )
    );
    return new Map(parents.map((run, i) => [run.run_id, pages[i]]));
  }

  private toggle(runId: string): void {
    if (!this.expanded.delete(runId)) {
      this.expanded.add(runId);
    }
    this.signature = '';
    this.host.requestRefresh();
  }

  /** Show one run's details (from the list, the timeline or a model's lineage). */
  select(runId: string): void {
    this.selected = runId;
    this.listView.hidden = true;
    this.detail.node.hidden = false;
    this.detail.show(runId);
    this.host.requestRefresh();
  }

  private back(): void {
    this.selected = null;
    this.detail.node.hidden = true;
    this.listView.hidden = false;
    this.signature = '';
    this.host.requestRefresh();
  }

  private query(): Query {
    const text = this.filterInput.value.trim();
    const isFilter = FILTER_SYNTAX.test(text);
    const [sort, order] = this.sortSelect.value.split(':');
    return {
      q: isFilter ? undefined : text,
      filter: isFilter ? text : undefined,
      experiment: this.experimentSelect.value,
      status: this.statusSelect.value,
      sort,
      order,
      offset: this.offset,
      limit: PAGE_SIZE
    };
  }

  private filterChanged(delay = 250): void {
    window.clearTimeout(this.debounce);
    this.debounce = window.setTimeout(() => {
      this.offset = 0;
      this.signature = '';
      this.host.requestRefresh();
    }, delay);
  }

  private showHint(message: string | null): void {
    this.filterHint.hidden = message === null;
    this.filterHint.textContent = message ?? '';
  }

  private updateExperiments(names: string[]): void {
    const current = this.experimentSelect.value;
    const have = Array.from(this.experimentSelect.options)
      .slice(1)
      .map(option => option.value);
    if (JSON.stringify(have) === JSON.stringify(names)) {
      return;
    }
    this.experimentSelect.replaceChildren(
      h('option', { value: '' }, 'All experiments'),
      ...names.map(name => h('option', { value: name }, name))
    );
    this.experimentSelect.value = names.includes(current) ? current : '';
    showChoice(this.experimentSelect);
  }

  private updateSortOptions(keys: string[]): void {
    const fixed = 5;
    const current = this.sortSelect.value;
    const metricOptions = Array.from(this.sortSelect.options).slice(fixed);
    const wanted = keys.map(key => `metrics.${key}:desc`);
    if (current.startsWith('metrics.') && !wanted.includes(current)) {
      wanted.unshift(current);
    }
    if (JSON.stringify(metricOptions.map(o => o.value)) === JSON.stringify(wanted)) {
      return;
    }
    metricOptions.forEach(option => option.remove());
    for (const value of wanted) {
      const key = value.slice('metrics.'.length, -':desc'.length);
      this.sortSelect.appendChild(h('option', { value }, `Highest ${key}`));
    }
    this.sortSelect.value = current;
    showChoice(this.sortSelect);
  }

  private render(page: IRunPage): void {
    const { total, offset, runs } = page;
    this.summary.textContent =
      total === 0 ? '' : `${total.toLocaleString()} run${total === 1 ? '' : 's'}`;
    const filter = this.query().filter as string | undefined;
    if (filter && total > 1) {
      const all = h(
        'button',
        { class: 'jp-mlops-button jp-mlops-compare-filter', title: `Compare ${filter}` },
        'Compare'
      );
      all.addEventListener('click', () =>
        this.host.compare({
          runs: [],
          filter,
          label: filter,
          experiment: this.experimentSelect.value || undefined
        })
      );
      this.summary.append(' ', all);
    }
    if (runs.length === 0) {
      const filtered =
        this.filterInput.value.trim() ||
        this.experimentSelect.value ||
        this.statusSelect.value;
      this.list.replaceChildren(
        h(
          'li',
          { class: 'jp-mlops-empty' },
          notice(
            filtered
              ? 'No run matches this filter.'
              : 'No runs yet. Load the extension in a notebook with ' +
                  '%load_ext jupyter_mlops, then run a cell that starts with %%track.'
          )
        )
      );
    } else {
      const origins = new Origins(runs);
      // Sorted by time, a kernel's runs are consecutive: a line above them names it.
      const grouped = origins.mixed && this.sortSelect.value.startsWith('start_time:');
      let last: string | null = null;
      const items: HTMLLIElement[] = [];
      for (const run of runs) {
        const key = run.session_id ?? '';
        if (grouped && key !== last) {
          items.push(origins.heading(run));
        }
        last = key;
        const marked = !grouped && origins.mixed ? origins : null;
        items.push(...this.rowWithChildren(run, page, marked));
      }
      this.list.replaceChildren(...items);
    }
    this.renderPager(total, offset, runs.length);
  }

  private rowWithChildren(
    run: IRunSummary,
    page: IRunPage,
    origins: Origins | null
  ): HTMLLIElement[] {
    const children = this.children.get(run.run_id);
    if (!children) {
      return [this.row(run, page, false, origins)];
    }
    const rows = [
      this.row(run, page, false, origins),
      ...children.runs.map(child => this.row(child, children, true))
    ];
    const more = children.total - children.runs.length;
    if (more > 0) {
      rows.push(
        h(
          'li',
          { class: 'jp-mlops-child-more' },
          `… ${more.toLocaleString()} more: filter parent_run_id = '${run.run_id}'`
        )
      );
    }
    return rows;
  }

  /** Pick or unpick a run for the Compare tab. */
  private togglePick(runId: string): void {
    if (!this.picked.delete(runId)) {
      this.picked.add(runId);
    }
    this.syncPicks();
  }

  private syncPicks(): void {
    for (const box of Array.from(
      this.list.querySelectorAll<HTMLInputElement>('input[data-pick]')
    )) {
      box.checked = this.picked.has(box.getAttribute('data-pick') as string);
    }
    this.updatePickBar();
  }

  private updatePickBar(): void {
    const count = this.picked.size;
    if (count === 0) {
      this.pickBar.replaceChildren();
      return;
    }
    const compare = h(
      'button',
      {
        class: 'jp-mlops-button jp-mlops-compare-picked',
        disabled: count < 2,
        title: count < 2 ? 'Pick at least two runs' : `Compare the ${count} picked runs`
      },
      `Compare ${count}`
    );
    compare.addEventListener('click', () =>
      this.host.compare({ runs: Array.from(this.picked) })
    );
    const clear = h('button', { class: 'jp-mlops-button', title: 'Unpick every run' }, 'Clear');
    clear.addEventListener('click', () => {
      this.picked.clear();
      this.syncPicks();
    });
    this.pickBar.replaceChildren(`${count} picked `, compare, ' ', clear);
  }

  private childToggle(run: IRunSummary): HTMLElement | null {
    if (run.children === 0) {
      return null;
    }
    const open = this.expanded.has(run.run_id);
    const unit = run.sweep ? 'trial' : 'child run';
    const count = `${run.children.toLocaleString()} ${unit}${run.children === 1 ? '' : 's'}`;
    return h(
      'button',
      {
        class: 'jp-mlops-toggle',
        'data-toggle': run.run_id,
        'aria-expanded': open ? 'true' : 'false',
        'aria-label': `${open ? 'Hide' : 'Show'} ${count}`,
        title: `${open ? 'Hide' : 'Show'} ${count}`
      },
      `${open ? '▾' : '▸'} ${run.children.toLocaleString()}`
    );
  }

  private row(
    run: IRunSummary,
    page: IRunPage,
    nested = false,
    origins: Origins | null = null
  ): HTMLLIElement {
    const running = run.status === 'RUNNING';
    const duration = running
      ? formatDuration(page.now - run.start_time)
      : formatDuration(run.duration_s);
    // The server sends each run's main metrics already in the page's order of keys.
    const metrics = Object.keys(run.metrics).map(key =>
      h(
        'span',
        { class: 'jp-mlops-chip', title: key },
        h('span', { class: 'jp-mlops-chip-key' }, breakable(key)),
        ' ',
        formatMetric(run.metrics[key], run.nonfinite?.[key])
      )
    );
    // A child found by a search over every run says whose child it is.
    const mark =
      !nested && run.parent_run_id
        ? h(
            'span',
            {
              class: 'jp-mlops-child-mark',
              title: `child run of ${run.parent_run_id.slice(0, 8)}`
            },
            '↳'
          )
        : null;
    return h(
      'li',
      {
        class: nested ? 'jp-mlops-run jp-mlops-child' : 'jp-mlops-run',
        role: 'option',
        tabindex: 0,
        'data-run-id': run.run_id,
        'data-status': run.status,
        'aria-selected': run.run_id === this.selected ? 'true' : 'false'
      },
      h(
        'div',
        { class: 'jp-mlops-row-main' },
        h('input', {
          type: 'checkbox',
          class: 'jp-mlops-pick',
          'data-pick': run.run_id,
          checked: this.picked.has(run.run_id),
          title: 'Pick to compare (or Ctrl-click the run)',
          'aria-label': `Pick ${run.name ?? run.run_id.slice(0, 8)} to compare`
        }),
        h('span', {
          class: 'jp-mlops-dot',
          'data-status': run.status,
          title: run.status.toLowerCase()
        }),
        mark,
        h(
          'span',
          { class: 'jp-mlops-run-name', title: run.name ?? run.run_id },
          run.name ?? `(unnamed) ${run.run_id.slice(0, 8)}`
        ),
        run.sweep ? h('span', { class: 'jp-mlops-sweep-badge' }, 'sweep') : null,
        this.childToggle(run),
        run.sweep
          ? h(
              'button',
              {
                class: 'jp-mlops-button jp-mlops-compare-sweep',
                'data-compare-sweep': run.run_id,
                title: "Compare this sweep's trials"
              },
              'Compare'
            )
          : null,
        h(
          'span',
          { class: 'jp-mlops-run-duration' },
          running ? `${duration}…` : duration
        )
      ),
      h(
        'div',
        { class: 'jp-mlops-row-sub' },
        h(
          'span',
          { class: 'jp-mlops-run-experiment', title: 'experiment' },
          run.experiment
        ),
        h(
          'span',
          { class: 'jp-mlops-run-start', title: formatDateTime(run.start_time) },
          formatTime(run.start_time)
        ),
        origins && !nested ? origins.label(run) : null,
        run.user || run.origin
          ? h(
              'span',
              {
                class: 'jp-mlops-run-user',
                title: run.origin ? `pulled from ${run.origin}` : 'user'
              },
              run.origin ? `${run.user ?? '?'} ⇣` : run.user
            )
          : null,
        ...metrics
      )
    );
  }

  private renderPager(total: number, offset: number, shown: number): void {
    if (total <= PAGE_SIZE && offset === 0) {
      this.pager.replaceChildren();
      return;
    }
    const previous = h(
      'button',
      {
        class: 'jp-mlops-button',
        'aria-label': 'Previous page',
        disabled: offset === 0
      },
      '‹ Prev'
    );
    const next = h(
      'button',
      {
        class: 'jp-mlops-button',
        'aria-label': 'Next page',
        disabled: offset + shown >= total
      },
      'Next ›'
    );
    previous.addEventListener('click', () =>
      this.goTo(Math.max(0, offset - PAGE_SIZE))
    );
    next.addEventListener('click', () => this.goTo(offset + PAGE_SIZE));
    this.pager.replaceChildren(
      previous,
      h(
        'span',
        { class: 'jp-mlops-pager-text' },
        `${(offset + 1).toLocaleString()}–${(offset + shown).toLocaleString()} ` +
          `of ${total.toLocaleString()}`
      ),
      next
    );
  }

  private goTo(offset: number): void {
    this.offset = offset;
    this.signature = '';
    this.list.parentElement?.scrollTo({ top: 0 });
    this.host.requestRefresh();
  }

  private clicked(event: Event): void {
    const target = event.target as HTMLElement;
    const pick = target.closest('input[data-pick]');
    if (pick) {
      this.togglePick(pick.getAttribute('data-pick') as string);
      return;
    }
    const sweep = target.closest('[data-compare-sweep]');
    if (sweep) {
      const parent = sweep.getAttribute('data-compare-sweep') as string;
      const name = sweep.closest('li')?.querySelector('.jp-mlops-run-name')?.textContent;
      this.host.compare({ runs: [], parent, label: `sweep ${name ?? parent.slice(0, 8)}` });
      return;
    }
    const mouse = event as MouseEvent;
    if (mouse.ctrlKey || mouse.metaKey) {
      const picked = target.closest('li.jp-mlops-run')?.getAttribute('data-run-id');
      if (picked) {
        event.preventDefault();
        this.togglePick(picked);
      }
      return;
    }
    const toggle = (event.target as HTMLElement).closest('[data-toggle]');
    const parent = toggle?.getAttribute('data-toggle');
    if (parent) {
      this.toggle(parent);
      return;
    }
    const item = (event.target as HTMLElement).closest('li.jp-mlops-run');
    const runId = item?.getAttribute('data-run-id');
    if (runId) {
      this.select(runId);
    }
  }

  private keyed(event: KeyboardEvent): void {
    const item = (event.target as HTMLElement).closest(
      'li.jp-mlops-run'
    ) as HTMLElement | null;
    if (!item) {
      return;
    }
    if ((event.target as HTMLElement).closest('[data-toggle], input, button')) {
      return; // a toggle, a check box or a button: its own Enter and Space click it
    }
    const toggle = item.querySelector('[data-toggle]');
    const open = toggle?.getAttribute('aria-expanded') === 'true';
    if (
      toggle &&
      ((event.key === 'ArrowRight' && !open) || (event.key === 'ArrowLeft' && open))
    ) {
      event.preventDefault();
      this.toggle(toggle.getAttribute('data-toggle') as string);
    } else if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      const runId = item.getAttribute('data-run-id');
      if (runId) {
        this.select(runId);
      }
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      // The next run, past the lines that name a kernel or count hidden children.
      let sibling = item as Element | null;
      do {
        sibling =
          event.key === 'ArrowDown'
            ? sibling!.nextElementSibling
            : sibling!.previousElementSibling;
      } while (sibling && !sibling.matches('li.jp-mlops-run'));
      (sibling as HTMLElement | null)?.focus();
    }
  }
}

/** A select's choice in full on hover, whatever width the sidebar leaves it. */
function showChoice(select: HTMLSelectElement): void {
  const label = select.getAttribute('aria-label') ?? '';
  const chosen = select.selectedOptions[0]?.textContent ?? '';
  select.title = `${label}: ${chosen}`;
}

/** Where a page's runs came from: their notebooks and kernels (sessions). */
class Origins {
  /** Whether the page holds runs of more than one kernel (or some of none). */
  readonly mixed: boolean;
  // Notebooks with runs of more than one kernel on the page: their labels add the time.
  private readonly restarted = new Set<string>();

  constructor(runs: IRunSummary[]) {
    const sessions = new Map<string, string>();
    for (const run of runs) {
      sessions.set(run.session_id ?? '', notebookOf(run));
    }
    this.mixed = sessions.size > 1;
    const seen = new Set<string>();
    for (const notebook of sessions.values()) {
      if (seen.has(notebook)) {
        this.restarted.add(notebook);
      }
      seen.add(notebook);
    }
  }

  /** The line above a kernel's runs: its notebook and when the kernel started. */
  heading(run: IRunSummary): HTMLLIElement {
    const notebook = notebookOf(run);
    const started = run.session_started
      ? `kernel started ${formatTime(run.session_started)}`
      : '';
    return h(
      'li',
      {
        class: 'jp-mlops-origin',
        role: 'presentation',
        'data-session': run.session_id ?? '',
        title: describe(run)
      },
      h('span', { class: 'jp-mlops-origin-notebook' }, notebook),
      started ? h('span', { class: 'jp-mlops-origin-time' }, started) : null
    );
  }

  /** A run's own mark of its origin, for lists not grouped by kernel. */
  label(run: IRunSummary): HTMLElement {
    const notebook = notebookOf(run);
    const again = this.restarted.has(notebook) && run.session_started;
    return h(
      'span',
      {
        class: 'jp-mlops-run-notebook',
        'data-session': run.session_id ?? '',
        title: describe(run)
      },
      again ? `${notebook} · ${formatTime(run.session_started)}` : notebook
    );
  }
}

function notebookOf(run: IRunSummary): string {
  if (run.notebook_name) {
    return run.notebook_name;
  }
  return run.session_id ? 'a kernel without a notebook' : 'outside a kernel';
}

function describe(run: IRunSummary): string {
  if (!run.session_id) {
    return 'Logged outside a Jupyter kernel (a script or a plain Python process)';
  }
  const started = run.session_started
    ? `, kernel started ${formatDateTime(run.session_started)}`
    : '';
  return `${notebookOf(run)}${started} (session ${run.session_id.slice(0, 8)})`;
}
