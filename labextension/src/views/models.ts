/**
 * Models: registered names with their versions and aliases; a model's versions with their
 * key metrics and lineage (run, cell, notebook, data). An alias is set, moved or removed
 * here through the server, which signs it as set_alias does. "Insert load code" writes
 * the line that loads the model into the active notebook: by @champion when there is one,
 * else by the latest version number, and shows that line before and after.
 */
import { Notification } from '@jupyterlab/apputils';

import { api, IModelDetail, IModelSummary, IModelVersion } from '../api';
import { formatBytes, formatDateTime, formatMetric, formatTime, h, notice } from '../dom';
import { breakable } from '../names';
import { NotebookBridge } from '../notebook';
import { IPanelHost, IView } from './view';

/** The alias "Insert load code" prefers: MLflow's name for the version in use. */
export const PREFERRED_ALIAS = 'champion';
const SUGGESTED_ALIASES = [PREFERRED_ALIAS, 'challenger'];
const DATALIST_ID = 'jp-mlops-alias-names';

/** The code that loads `uri` (name@alias or name/version) in a notebook. */
export function loadCode(uri: string): string {
  return `import jupyter_mlops\n\nmodel = jupyter_mlops.load_model(${JSON.stringify(uri)})`;
}

/** The one line of loadCode that says what it loads. */
function loadLine(uri: string): string {
  return `model = jupyter_mlops.load_model(${JSON.stringify(uri)})`;
}

/** What to load a model by: @champion when set, else its latest version (not whichever
 * alias sorts first). */
export function preferredUri(model: IModelDetail): string | null {
  if (PREFERRED_ALIAS in model.aliases) {
    return `${model.name}@${PREFERRED_ALIAS}`;
  }
  const latest = model.versions[0];
  return latest ? `${model.name}/${latest.version}` : null;
}

export class ModelsView implements IView {
  readonly node: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly listView: HTMLElement;
  private readonly detailBody: HTMLElement;
  private readonly detailView: HTMLElement;
  private selected: string | null = null;
  private signature = '';
  // What the last alias change did (or why it failed); kept across redraws.
  private readonly status = h('div', {
    class: 'jp-mlops-alias-status',
    role: 'status',
    hidden: true
  });

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
      this.say(null);
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
    this.say(null);
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
        title: `Add ${loadLine(uri)} to the active notebook, below its active cell`,
        'data-uri': uri
      },
      label
    );
    button.addEventListener('click', () => this.insert(uri));
    return button;
  }

  private insert(uri: string): void {
    const notebook = this.bridge.active()?.path;
    if (this.bridge.insertCode(loadCode(uri))) {
      Notification.info(`Inserted ${loadLine(uri)} into ${notebook}.`, {
        autoClose: 5000
      });
    }
  }

  private renderDetail(model: IModelDetail): void {
    const uri = preferredUri(model);
    const why =
      uri && uri.includes('@')
        ? `@${PREFERRED_ALIAS}: the version marked for use, wherever it is moved`
        : `the latest version; set @${PREFERRED_ALIAS} to load the one marked for use`;
    this.detailBody.replaceChildren(
      h(
        'div',
        { class: 'jp-mlops-detail-head' },
        h('h3', { class: 'jp-mlops-detail-title' }, model.name),
        h('div', { class: 'jp-mlops-row-sub' }, ...aliasChips(model.aliases)),
        uri
          ? h(
              'div',
              { class: 'jp-mlops-load' },
              h(
                'div',
                { class: 'jp-mlops-actions' },
                this.insertButton(
                  uri,
                  `Insert load code (${uri.slice(model.name.length)})`
                )
              ),
              h('code', { class: 'jp-mlops-load-code', title: why }, loadLine(uri)),
              h('div', { class: 'jp-mlops-muted jp-mlops-load-why' }, `Loads ${why}.`)
            )
          : null,
        this.status,
        h(
          'datalist',
          { id: DATALIST_ID },
          ...Array.from(new Set([...SUGGESTED_ALIASES, ...Object.keys(model.aliases)]))
            .sort()
            .map(alias => h('option', { value: alias }))
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
    const facts: [string, string, string?][] = [];
    if (version.class_name || version.framework) {
      facts.push([
        'Model',
        [version.framework, version.class_name].filter(Boolean).join(' · ')
      ]);
    }
    if (version.created) {
      facts.push([
        'Registered',
        formatTime(version.created),
        formatDateTime(version.created)
      ]);
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
    const [cardButton, card] = this.card(name, version.version);
    return h(
      'li',
      { class: 'jp-mlops-version', 'data-version': version.version },
      h(
        'div',
        { class: 'jp-mlops-row-main' },
        h('span', { class: 'jp-mlops-version-number' }, `v${version.version}`),
        ...version.aliases.map(alias => this.aliasOnVersion(name, alias))
      ),
      keyMetrics(version),
      h(
        'dl',
        { class: 'jp-mlops-facts' },
        ...facts.flatMap(([k, v, full]) => [
          h('dt', {}, k),
          h('dd', { title: full ?? v }, v)
        ]),
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
          this.insertButton(`${name}@${alias}`, `Insert load code (@${alias})`)
        ),
        goToCell,
        cardButton
      ),
      card,
      this.aliasForm(name, version.version)
    );
  }

  /**
   * The version's model card, fetched when first asked for and shown in a frame that is
   * sandboxed with no permission at all (no scripts, no same origin, no forms): the card
   * escapes every store string and carries its own CSP besides (R7).
   */
  private card(
    name: string,
    version: number
  ): [HTMLButtonElement, HTMLElement] {
    const button = h(
      'button',
      {
        class: 'jp-mlops-button jp-mlops-card-button',
        title: `Show the model card of ${name}/${version}`
      },
      'Model card'
    );
    const holder = h('div', { class: 'jp-mlops-card', hidden: true });
    button.addEventListener('click', () => {
      holder.hidden = !holder.hidden;
      if (holder.hidden || holder.dataset.card) {
        return;
      }
      holder.dataset.card = 'loading';
      api.modelCard(name, version).then(
        found => {
          const frame = h('iframe', {
            class: 'jp-mlops-card-frame',
            sandbox: '',
            title: `Model card of ${name}/${version}`
          });
          frame.srcdoc = found.html;
          holder.dataset.card = 'shown';
          holder.replaceChildren(frame);
        },
        error => {
          holder.dataset.card = 'failed';
          holder.replaceChildren(notice((error as Error).message, 'error'));
        }
      );
    });
    return [button, holder];
  }

  /** An alias on a version, with a button that removes it. */
  private aliasOnVersion(name: string, alias: string): HTMLElement {
    const remove = h(
      'button',
      {
        class: 'jp-mlops-alias-remove',
        title: `Remove @${alias} (the version stays)`,
        'aria-label': `Remove @${alias}`
      },
      '×'
    );
    remove.addEventListener('click', () =>
      this.changeAlias(async () => {
        const change = await api.deleteAlias(name, alias);
        return `Removed @${alias} (it pointed to v${change.previous}).`;
      })
    );
    return h(
      'span',
      { class: 'jp-mlops-alias-chip', 'data-alias': alias },
      h('span', { class: 'jp-mlops-alias' }, `@${alias}`),
      remove
    );
  }

  /** "Set alias": points an alias (new, or moved from another version) at this one. */
  private aliasForm(name: string, version: number): HTMLElement {
    const input = h('input', {
      class: 'jp-mlops-alias-input jp-mod-styled',
      type: 'text',
      list: DATALIST_ID,
      placeholder: `alias, e.g. ${PREFERRED_ALIAS}`,
      spellcheck: 'false',
      'aria-label': `Alias to point at v${version}`
    });
    const form = h(
      'form',
      { class: 'jp-mlops-alias-form', 'data-version': version },
      input,
      h(
        'button',
        {
          class: 'jp-mlops-button',
          type: 'submit',
          title: `Point the alias at v${version}, moving it from any other version`
        },
        'Set alias'
      )
    );
    form.addEventListener('submit', event => {
      event.preventDefault();
      const alias = input.value.trim();
      if (!alias) {
        this.say(`Type an alias for v${version}, such as ${PREFERRED_ALIAS}.`, true);
        return;
      }
      this.changeAlias(async () => {
        const change = await api.setAlias(name, alias, version);
        if (change.previous === null) {
          return `Set @${alias} on v${version}.`;
        }
        if (change.previous === version) {
          return `@${alias} already pointed to v${version}.`;
        }
        return `Moved @${alias} from v${change.previous} to v${version}.`;
      });
    });
    return form;
  }

  /** Run one alias change, then show what it did (or the server's reason) and refresh. */
  private changeAlias(change: () => Promise<string>): void {
    change().then(
      text => {
        this.say(text);
        this.signature = '';
        this.host.requestRefresh();
      },
      (error: Error) => this.say(error.message, true)
    );
  }

  private say(text: string | null, error = false): void {
    this.status.hidden = text === null;
    this.status.textContent = text ?? '';
    this.status.classList.toggle('jp-mlops-notice-error', error);
  }
}

/** The version's run's main metrics, as chips like the runs list's. */
function keyMetrics(version: IModelVersion): HTMLElement | null {
  const metrics = Object.entries(version.metrics ?? {});
  if (!metrics.length) {
    return null;
  }
  return h(
    'div',
    { class: 'jp-mlops-row-sub jp-mlops-version-metrics' },
    ...metrics.map(([key, value]) =>
      h(
        'span',
        {
          class: 'jp-mlops-chip',
          'data-key': key,
          title: `${key} of the run that made it`
        },
        h('span', { class: 'jp-mlops-chip-key' }, breakable(key)),
        ' ',
        formatMetric(value, version.nonfinite?.[key])
      )
    )
  );
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
