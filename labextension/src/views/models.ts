/**
 * Models: registered names with their versions and aliases; a model's versions with their
 * lineage (run, cell, notebook, data); "Insert load code" writes the line that loads one
 * into the active notebook.
 */
import { api, IModelDetail, IModelSummary, IModelVersion } from '../api';
import { formatBytes, formatTime, h, notice } from '../dom';
import { NotebookBridge } from '../notebook';
import { IPanelHost, IView } from './view';

/** The code that loads `uri` (name@alias or name/version) in a notebook. */
export function loadCode(uri: string): string {
  return `import jupyter_mlops\n\nmodel = jupyter_mlops.load_model(${JSON.stringify(uri)})`;
}

export class ModelsView implements IView {
  readonly node: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly listView: HTMLElement;
  private readonly detailBody: HTMLElement;
  private readonly detailView: HTMLElement;
  private selected: string | null = null;
  private signature = '';

  constructor(
    private readonly bridge: NotebookBridge,
    private readonly host: IPanelHost
  ) {
    this.list = h('ul', {
      class: 'jp-mlops-list jp-mlops-model-list',
      'aria-label': 'Models'
    });
    this.listView = h('div', { class: 'jp-mlops-scroll' }, this.list);
    const back = h('button', { class: 'jp-mlops-button jp-mlops-back' }, '‹ Models');
    back.addEventListener('click', () => {
      this.selected = null;
      this.signature = '';
      this.detailView.hidden = true;
      this.listView.hidden = false;
      this.host.requestRefresh();
    });
    this.detailBody = h('div', { class: 'jp-mlops-detail-body' });
    this.detailView = h(
      'div',
      { class: 'jp-mlops-detail jp-mlops-scroll', hidden: true },
      h('div', { class: 'jp-mlops-detail-nav' }, back),
      this.detailBody
    );
    this.node = h(
      'div',
      { class: 'jp-mlops-view jp-mlops-models' },
      this.listView,
      this.detailView
    );
  }

  async refresh(): Promise<void> {
    if (this.selected) {
      let model: IModelDetail;
      try {
        model = await api.model(this.selected);
      } catch (error) {
        this.detailBody.replaceChildren(notice((error as Error).message, 'error'));
        return;
      }
      const signature = JSON.stringify(model);
      if (signature !== this.signature) {
        this.signature = signature;
        this.renderDetail(model);
      }
      return;
    }
    const { models } = await api.models();
    const signature = JSON.stringify(models);
    if (signature === this.signature) {
      return;
    }
    this.signature = signature;
    if (!models.length) {
      this.list.replaceChildren(
        h(
          'li',
          { class: 'jp-mlops-empty' },
          notice(
            'No models registered yet. Register one with %mlops register NAME, ' +
              'or register_model(model, name).'
          )
        )
      );
      return;
    }
    this.list.replaceChildren(...models.map(model => this.row(model)));
  }

  private open(name: string): void {
    this.selected = name;
    this.signature = '';
    this.listView.hidden = true;
    this.detailView.hidden = false;
    this.detailBody.replaceChildren(notice('Loading…'));
    this.host.requestRefresh();
  }

  private row(model: IModelSummary): HTMLElement {
    const item = h(
      'li',
      { class: 'jp-mlops-model', tabindex: 0, 'data-model': model.name },
      h(
        'div',
        { class: 'jp-mlops-row-main' },
        h('span', { class: 'jp-mlops-model-name' }, model.name),
        h(
          'span',
          { class: 'jp-mlops-muted' },
          model.latest_version !== null
            ? `v${model.latest_version} · ${plural(model.versions, 'version')}`
            : 'no versions'
        )
      ),
      h(
        'div',
        { class: 'jp-mlops-row-sub' },
        ...aliasChips(model.aliases),
        h('span', { class: 'jp-mlops-muted' }, formatTime(model.updated))
      )
    );
    item.addEventListener('click', () => this.open(model.name));
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this.open(model.name);
      }
    });
    return item;
  }

  private insertButton(uri: string, label = 'Insert load code'): HTMLButtonElement {
    const button = h(
      'button',
      {
        class: 'jp-mlops-button jp-mlops-insert',
        title: `Add model = jupyter_mlops.load_model("${uri}") to the active notebook`,
        'data-uri': uri
      },
      label
    );
    button.addEventListener('click', () => this.bridge.insertCode(loadCode(uri)));
    return button;
  }

  private renderDetail(model: IModelDetail): void {
    const aliases = Object.keys(model.aliases).sort();
    const latest = model.versions[0];
    const uri = aliases.length
      ? `${model.name}@${aliases[0]}`
      : latest
        ? `${model.name}/${latest.version}`
        : null;
    this.detailBody.replaceChildren(
      h(
        'div',
        { class: 'jp-mlops-detail-head' },
        h('h3', { class: 'jp-mlops-detail-title' }, model.name),
        h('div', { class: 'jp-mlops-row-sub' }, ...aliasChips(model.aliases)),
        h(
          'div',
          { class: 'jp-mlops-actions' },
          uri
            ? this.insertButton(
                uri,
                `Insert load code (${uri.slice(model.name.length)})`
              )
            : null
        )
      ),
      h(
        'section',
        { class: 'jp-mlops-section' },
        h('h4', { class: 'jp-mlops-section-title' }, 'Versions'),
        model.versions.length
          ? h(
              'ul',
              { class: 'jp-mlops-versions' },
              ...model.versions.map(v => this.version(model.name, v))
            )
          : notice('No versions.')
      )
    );
  }

  private version(name: string, version: IModelVersion): HTMLElement {
    const lineage = version.lineage;
    const facts: [string, string][] = [];
    if (version.class_name || version.framework) {
      facts.push([
        'Model',
        [version.framework, version.class_name].filter(Boolean).join(' · ')
      ]);
    }
    if (version.created) {
      facts.push(['Registered', formatTime(version.created)]);
    }
    if (typeof version.size === 'number') {
      facts.push(['Size', formatBytes(version.size)]);
    }
    if (version.sha256) {
      facts.push(['sha256', version.sha256.slice(0, 16)]);
    }
    if (version.variable) {
      facts.push(['Variable', String(version.variable)]);
    }
    const run = lineage.run;
    const runLink = run
      ? h(
          'button',
          { class: 'jp-mlops-link', title: 'Show this run' },
          `${run.name ?? run.run_id.slice(0, 8)} (${run.experiment})`
        )
      : null;
    runLink?.addEventListener('click', () => this.host.showRun(run!.run_id));
    const cellId = lineage.cell?.cell_id ?? run?.cell_id ?? null;
    const path = lineage.notebook_path;
    const goToCell =
      cellId && path
        ? h(
            'button',
            { class: 'jp-mlops-button', title: `Open ${path} at the cell` },
            'Go to cell'
          )
        : null;
    goToCell?.addEventListener(
      'click',
      () => void this.bridge.goToCell(path!, cellId!)
    );
    return h(
      'li',
      { class: 'jp-mlops-version', 'data-version': version.version },
      h(
        'div',
        { class: 'jp-mlops-row-main' },
        h('span', { class: 'jp-mlops-version-number' }, `v${version.version}`),
        ...version.aliases.map(alias =>
          h('span', { class: 'jp-mlops-alias' }, `@${alias}`)
        )
      ),
      h(
        'dl',
        { class: 'jp-mlops-facts' },
        ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { title: v }, v)]),
        run ? h('dt', {}, 'Run') : null,
        run ? h('dd', {}, runLink) : null,
        lineage.cell ? h('dt', {}, 'Cell') : null,
        lineage.cell
          ? h(
              'dd',
              { class: 'jp-mlops-code-inline', title: lineage.cell.source },
              `[${lineage.cell.execution_count ?? ' '}] ${lineage.cell.source.split('\n')[0]}`
            )
          : null,
        path ? h('dt', {}, 'Notebook') : null,
        path ? h('dd', { title: path }, path) : null,
        lineage.datasets.length ? h('dt', {}, 'Data') : null,
        lineage.datasets.length
          ? h('dd', {}, lineage.datasets.map(describeDataset).join(', '))
          : null
      ),
      h(
        'div',
        { class: 'jp-mlops-actions' },
        this.insertButton(
          `${name}/${version.version}`,
          `Insert load code (v${version.version})`
        ),
        ...version.aliases.map(alias =>
          this.insertButton(`${name}@${alias}`, `@${alias}`)
        ),
        goToCell
      )
    );
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function describeDataset(dataset: unknown): string {
  if (dataset && typeof dataset === 'object') {
    const { name, role } = dataset as { name?: unknown; role?: unknown };
    if (typeof name === 'string') {
      return typeof role === 'string' ? `${name} (${role})` : name;
    }
  }
  return typeof dataset === 'string' ? dataset : JSON.stringify(dataset);
}

function aliasChips(aliases: Record<string, number>): HTMLElement[] {
  return Object.entries(aliases)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([alias, version]) =>
      h(
        'span',
        { class: 'jp-mlops-alias', title: `${alias} → v${version}` },
        `@${alias} → v${version}`
      )
    );
}
