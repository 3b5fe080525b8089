/**
 * Timeline: the executions of the active notebook's kernel in the order they ran, with
 * failed, out-of-order and stale ones marked. Clicking one goes to its cell.
 */
import { api, ICellExecution, ICellPage, ISession } from '../api';
import { firstLine, formatDuration, formatTime, h, notice } from '../dom';
import { checkStore, kernelStore } from '../kernelstore';
import { NotebookBridge } from '../notebook';
import { IPanelHost, IView } from './view';

const FAILED = new Set(['error', 'interrupted', 'killed']);

export class TimelineView implements IView {
  readonly node: HTMLElement;
  private readonly header: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly scroller: HTMLElement;
  private signature = '';

  constructor(
    private readonly bridge: NotebookBridge,
    private readonly host: IPanelHost
  ) {
    this.header = h('div', { class: 'jp-mlops-timeline-head' });
    this.list = h('ol', {
      class: 'jp-mlops-list jp-mlops-timeline',
      'aria-label': 'Executions'
    });
    this.scroller = h('div', { class: 'jp-mlops-scroll' }, this.list);
    this.node = h(
      'div',
      { class: 'jp-mlops-view jp-mlops-timeline-view' },
      this.header,
      this.scroller
    );
  }

  async refresh(): Promise<void> {
    const active = this.bridge.active();
    if (!active) {
      this.show('none', null, [
        notice('Open a notebook: its executions show here, in the order they ran.')
      ]);
      return;
    }
    // The kernel's own word on where it records, and its session: the Timeline follows
    // the kernel, whatever the notebook was called when the kernel started.
    const check = await checkStore(active.panel);
    if (check.same === false) {
      const store = kernelStore(check);
      this.show(`elsewhere:${active.path}:${store}`, active.path, [
        notice(
          `Its executions are not in this sidebar's store: its kernel records to ${store}.`
        )
      ]);
      return;
    }
    const { sessions } = await api.sessions({
      notebook: active.path,
      kernel: active.kernelId,
      limit: 5
    });
    const own = check.kernel.state === 'loaded' ? check.kernel.answer.session_id : null;
    let session: ISession | undefined =
      sessions.find(s => s.session_id === own) ?? sessions[0];
    if (own && session?.session_id !== own) {
      // A kernel the server cannot tie to its process (a remote one): its own session.
      session = (await this.ownSession(own)) ?? session;
    }
    if (!session) {
      this.show(`none:${active.path}:${check.kernel.state}`, active.path, [
        notice(
          check.kernel.state === 'loaded'
            ? 'The extension is loaded in this kernel: its executions show here as they ' +
                'are recorded.'
            : check.kernel.state === 'not-loaded'
              ? 'No executions recorded for this notebook yet. Run %load_ext jupyter_mlops ' +
                'in it: from then on every cell it runs shows here.'
              : 'No executions recorded for this notebook yet. Once %load_ext ' +
                'jupyter_mlops has run in it, every cell it runs shows here.'
        )
      ]);
      return;
    }
    const page = await api.cells(session.session_id);
    const signature = JSON.stringify([
      active.path,
      active.kernelId,
      session.session_id,
      session.current,
      page
    ]);
    if (signature === this.signature) {
      return;
    }
    const atBottom =
      this.scroller.scrollTop + this.scroller.clientHeight >=
      this.scroller.scrollHeight - 8;
    this.signature = signature;
    this.renderHeader(active.path, session, page);
    this.list.replaceChildren(
      ...(page.cells.length
        ? page.cells.map(cell => this.row(cell, active.path, active.kernelId))
        : [h('li', { class: 'jp-mlops-empty' }, notice('No executions yet.'))])
    );
    if (atBottom) {
      this.scroller.scrollTop = this.scroller.scrollHeight;
    }
  }

  /** The kernel's session as the store has it (undefined until its first row is written). */
  private async ownSession(sessionId: string): Promise<ISession | undefined> {
    try {
      const page = await api.cells(sessionId);
      const first = page.cells[0];
      return {
        session_id: sessionId,
        started: first?.started ?? 0,
        notebook_path: page.notebook_path,
        notebook_name: null,
        python: null,
        cells: page.total,
        last_started: page.cells[page.cells.length - 1]?.started ?? null,
        alive: true,
        current: true
      };
    } catch {
      return undefined; // not written yet: the next refresh finds it
    }
  }

  private show(signature: string, path: string | null, content: HTMLElement[]): void {
    if (signature === this.signature) {
      return;
    }
    this.signature = signature;
    this.header.replaceChildren(
      path ? h('div', { class: 'jp-mlops-timeline-title', title: path }, path) : ''
    );
    this.list.replaceChildren(h('li', { class: 'jp-mlops-empty' }, ...content));
  }

  private renderHeader(path: string, session: ISession, page: ICellPage): void {
    const failed = page.cells.filter(c => FAILED.has(c.status)).length;
    const outOfOrder = page.cells.filter(c => c.out_of_order).length;
    const parts = [
      `${page.total} execution${page.total === 1 ? '' : 's'}`,
      failed ? `${failed} failed` : '',
      outOfOrder ? `${outOfOrder} out of order` : '',
      session.current ? 'this kernel' : `earlier kernel, ${formatTime(session.started)}`
    ].filter(Boolean);
    this.header.replaceChildren(
      h('div', { class: 'jp-mlops-timeline-title', title: path }, path),
      h('div', { class: 'jp-mlops-muted' }, parts.join(' · '))
    );
  }

  private row(cell: ICellExecution, path: string, kernelId: string | null): HTMLElement {
    const failed = FAILED.has(cell.status);
    const marks: HTMLElement[] = [];
    if (failed) {
      marks.push(
        h(
          'span',
          {
            class: 'jp-mlops-mark jp-mlops-mark-failed',
            title: cell.error ?? cell.status
          },
          cell.status === 'error' ? 'failed' : cell.status
        )
      );
    }
    if (cell.out_of_order) {
      marks.push(
        h(
          'span',
          {
            class: 'jp-mlops-mark jp-mlops-mark-order',
            title:
              'This cell sits above the cell run before it: the notebook was not run top to bottom.'
          },
          'out of order'
        )
      );
    }
    if (cell.stale) {
      marks.push(
        h(
          'span',
          { class: 'jp-mlops-mark jp-mlops-mark-stale', title: cell.stale },
          'stale'
        )
      );
    }
    if (cell.possibly_stale) {
      marks.push(
        h(
          'span',
          {
            class: 'jp-mlops-mark jp-mlops-mark-maybe',
            title: `Possibly modified: inputs changed in place since, which may or may not change the run (${cell.possibly_stale})`
          },
          'modified?'
        )
      );
    }
    if (cell.files?.length) {
      marks.push(
        h(
          'span',
          {
            class: 'jp-mlops-mark jp-mlops-mark-files',
            title: `Wrote ${cell.files.join(', ')}`
          },
          cell.files.length === 1 ? 'wrote' : `wrote ${cell.files.length}`
        )
      );
    }
    let runLink: HTMLElement | null = null;
    if (cell.run_id) {
      const runId = cell.run_id;
      runLink = h(
        'button',
        { class: 'jp-mlops-link jp-mlops-mark', title: 'Show the run this cell made' },
        'run'
      );
      runLink.addEventListener('click', event => {
        event.stopPropagation();
        this.host.showRun(runId);
      });
    }
    const item = h(
      'li',
      {
        class: 'jp-mlops-exec',
        'data-status': cell.status,
        'data-out-of-order': cell.out_of_order ? 'true' : 'false',
        tabindex: 0,
        title: cell.source
      },
      h('span', { class: 'jp-mlops-prompt' }, `[${cell.execution_count ?? ' '}]`),
      h('span', {
        class: 'jp-mlops-dot',
        'data-status': failed
          ? 'FAILED'
          : cell.status === 'running'
            ? 'RUNNING'
            : 'FINISHED'
      }),
      h('code', { class: 'jp-mlops-exec-source' }, firstLine(cell.source)),
      ...marks,
      runLink,
      h('span', { class: 'jp-mlops-exec-duration' }, formatDuration(cell.duration_s))
    );
    if (cell.cell_id) {
      const cellId = cell.cell_id;
      item.addEventListener('click', () => void this.bridge.goToCell(path, cellId, kernelId));
      item.addEventListener('keydown', event => {
        if (event.key === 'Enter') {
          void this.bridge.goToCell(path, cellId, kernelId);
        }
      });
    }
    return item;
  }
}
