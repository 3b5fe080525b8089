/**
 * A run's details in a tab of the main area: the sidebar's view with room for long
 * names, values and code. One tab per run; opening it again brings it to the front. A
 * running run refreshes every second while its tab is shown.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { NotebookBridge } from '../notebook';
import { RunDetailView } from './rundetail';

const REFRESH_MS = 1000;
const open = new Map<string, RunTab>();

export class RunTab extends Widget {
  private readonly detail: RunDetailView;
  private timer = 0;

  constructor(bridge: NotebookBridge, runId: string) {
    super();
    this.id = `jp-mlops-run-${runId}`;
    this.addClass('jp-mlops-panel');
    this.addClass('jp-mlops-run-tab');
    this.title.label = `Run ${runId.slice(0, 8)}`;
    this.title.caption = `Run ${runId}`;
    this.title.closable = true;
    this.detail = new RunDetailView(bridge, () => undefined, {
      inTab: true,
      loaded: run => {
        this.title.label = `Run ${run.name ?? runId.slice(0, 8)}`;
      }
    });
    this.detail.show(runId);
    this.node.appendChild(this.detail.node);
  }

  dispose(): void {
    window.clearInterval(this.timer);
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.start();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.start();
  }

  protected onBeforeHide(msg: Message): void {
    window.clearInterval(this.timer);
    super.onBeforeHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    window.clearInterval(this.timer);
    super.onBeforeDetach(msg);
  }

  private start(): void {
    void this.detail.refresh();
    window.clearInterval(this.timer);
    // RunDetailView.refresh asks the server only while the run is running.
    this.timer = window.setInterval(() => void this.detail.refresh(), REFRESH_MS);
  }
}

/** Show run `runId` in a main-area tab (the one already open, if any). */
export function openRunTab(bridge: NotebookBridge, runId: string): RunTab {
  let tab = open.get(runId);
  if (!tab || tab.isDisposed) {
    tab = new RunTab(bridge, runId);
    open.set(runId, tab);
    tab.disposed.connect(() => open.delete(runId));
    bridge.app.shell.add(tab, 'main');
  }
  bridge.app.shell.activateById(tab.id);
  return tab;
}
