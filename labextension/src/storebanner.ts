/**
 * The line under the tabs that says which store the sidebar reads and, when the active
 * notebook's kernel records to another one, names that store instead.
 */
import { h } from './dom';
import { checkStore, elsewhere } from './kernelstore';
import { NotebookBridge } from './notebook';

export class StoreBanner {
  readonly node: HTMLElement;
  private readonly where: HTMLElement;
  private readonly warning: HTMLElement;
  private signature = '';

  constructor(private readonly bridge: NotebookBridge) {
    this.where = h('div', { class: 'jp-mlops-store-where jp-mlops-muted' });
    this.warning = h('div', {
      class: 'jp-mlops-store-elsewhere',
      role: 'status',
      hidden: true
    });
    this.node = h('div', { class: 'jp-mlops-store' }, this.where, this.warning);
  }

  async refresh(): Promise<void> {
    const check = await checkStore(this.bridge.active()?.panel ?? null);
    const message = check.same === false ? elsewhere(check) : '';
    const signature = JSON.stringify([check.server, message]);
    if (signature === this.signature) {
      return;
    }
    this.signature = signature;
    this.where.textContent = `Store: ${check.server.path}`;
    this.where.title =
      `The store this sidebar reads: ${check.server.path} (relative to the server's ` +
      'root folder when it lies inside it)' +
      (check.server.exists ? '.' : '; no kernel has written to it yet.');
    this.warning.hidden = !message;
    this.warning.textContent = message;
  }
}
