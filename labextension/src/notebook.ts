/**
 * What the sidebar does to notebooks: open one at a cell, insert code, and tell which
 * notebook and kernel are active.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

export const HIGHLIGHT_CLASS = 'jp-mlops-highlight';

export interface IActiveNotebook {
  panel: NotebookPanel;
  path: string;
  kernelId: string | null;
}

export class NotebookBridge {
  constructor(
    readonly app: JupyterFrontEnd,
    readonly tracker: INotebookTracker
  ) {}

  /** The notebook last focused in the main area, with its path and kernel. */
  active(): IActiveNotebook | null {
    const panel = this.tracker.currentWidget;
    if (!panel) {
      return null;
    }
    return {
      panel,
      path: panel.context.path,
      kernelId: panel.sessionContext.session?.kernel?.id ?? null
    };
  }

  /**
   * Open `path` (or reveal it when open), scroll to the cell with id `cellId`, make it the
   * active cell and highlight it until another cell becomes active.
   *
   * When `path` is gone (renamed or moved since it was recorded), the notebook that the
   * run's kernel `kernelId` serves now is opened instead; when there is none, a message
   * says the file is gone.
   */
  async goToCell(
    path: string | null,
    cellId: string,
    kernelId?: string | null
  ): Promise<boolean> {
    let panel = path
      ? this.tracker.find(widget => widget.context.path === path)
      : undefined;
    if (!panel) {
      let target = path && (await this.exists(path)) ? path : null;
      if (!target) {
        const current = await this.notebookOfKernel(kernelId ?? null);
        target = current && (await this.exists(current)) ? current : null;
      }
      if (!target) {
        Notification.error(
          path
            ? `${path} is gone: it was deleted, or moved outside JupyterLab, and the ` +
                "kernel that made this run serves no notebook now. The cell's source is " +
                "in the run's details."
            : 'The notebook that made this run is not under the server root, and the ' +
                'kernel that made it serves no notebook now.',
          { autoClose: 10000 }
        );
        return false;
      }
      panel =
        this.tracker.find(widget => widget.context.path === target) ??
        (await this.open(target)) ??
        undefined;
      if (!panel) {
        return false;
      }
    }
    this.app.shell.activateById(panel.id);
    await panel.context.ready;
    await panel.revealed;
    const notebook = panel.content;
    const index = notebook.widgets.findIndex(cell => cell.model.id === cellId);
    if (index < 0) {
      Notification.warning(
        `The cell that made this run is no longer in ${panel.context.path}: it was deleted, or the ` +
          'notebook was not saved after it ran.',
        { autoClose: 8000 }
      );
      return false;
    }
    const cell = notebook.widgets[index];
    notebook.deselectAll();
    notebook.activeCellIndex = index;
    notebook.mode = 'command';
    await notebook.scrollToCell(cell, 'center');
    for (const other of notebook.widgets) {
      other.node.classList.remove(HIGHLIGHT_CLASS);
    }
    cell.node.classList.add(HIGHLIGHT_CLASS);
    const clear = () => {
      if (notebook.activeCell !== cell) {
        cell.node.classList.remove(HIGHLIGHT_CLASS);
        notebook.activeCellChanged.disconnect(clear);
      }
    };
    notebook.activeCellChanged.connect(clear);
    notebook.node.focus();
    return true;
  }

  /** Whether a file exists at `path` (true too when the server cannot say). */
  private async exists(path: string): Promise<boolean> {
    try {
      await this.app.serviceManager.contents.get(path, { content: false });
      return true;
    } catch (error) {
      return (error as { response?: Response }).response?.status !== 404;
    }
  }

  /** The path of the notebook kernel `kernelId` serves now, if it runs. */
  private async notebookOfKernel(kernelId: string | null): Promise<string | null> {
    if (!kernelId) {
      return null;
    }
    const open = this.tracker.find(
      widget => widget.sessionContext.session?.kernel?.id === kernelId
    );
    if (open) {
      return open.context.path;
    }
    const sessions = this.app.serviceManager.sessions;
    await sessions.refreshRunning();
    for (const session of sessions.running()) {
      if (session.kernel?.id === kernelId && session.type === 'notebook') {
        return session.path;
      }
    }
    return null;
  }

  private async open(path: string): Promise<NotebookPanel | null> {
    const opened = await this.app.commands.execute('docmanager:open', {
      path,
      factory: 'Notebook'
    });
    if (!(opened instanceof NotebookPanel)) {
      Notification.warning(`Could not open ${path} as a notebook.`, { autoClose: 5000 });
      return null;
    }
    return opened;
  }

  /** Add a code cell with `code` below the active cell of the active notebook. */
  insertCode(code: string): boolean {
    const active = this.active();
    if (!active) {
      Notification.warning(
        'Open a notebook first: the code goes into the active one.',
        {
          autoClose: 5000
        }
      );
      return false;
    }
    const notebook = active.panel.content;
    NotebookActions.insertBelow(notebook);
    const cell = notebook.activeCell;
    if (!cell) {
      return false;
    }
    cell.model.sharedModel.setSource(code);
    this.app.shell.activateById(active.panel.id);
    return true;
  }
}
