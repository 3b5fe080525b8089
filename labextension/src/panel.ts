/**
 * The left sidebar panel: tabs (Runs, Compare, Models, Timeline, Schedules) over one Poll
 * that refreshes the visible view (every second unless the settings say otherwise), backs
 * off on errors and stands by while hidden.
 */
import { LabIcon } from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { api } from './api';
import { CompareView, ICompareTarget } from './views/compare';
import { h } from './dom';
import { NotebookBridge } from './notebook';
import { StoreBanner } from './storebanner';
import { ModelsView } from './views/models';
import { RunsView } from './views/runs';
import { SchedulesView } from './views/schedules';
import { TimelineView } from './views/timeline';
import { IPanelHost, IView } from './views/view';

export const PANEL_ID = 'jupyter-mlops-panel';
const REFRESH_MS = 1000; // until the settings are read

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 3h2v16h16v2H3z"/>
    <path d="M7.5 15.6 6.1 14.2l4.6-4.6 3 3 4.9-4.9-1.9-1.9H21v4.3l-1.9-1.9-5.4 5.4-3-3z"/>
    <circle cx="10.7" cy="9.6" r="1.6"/>
    <circle cx="13.7" cy="12.6" r="1.6"/>
  </g>
</svg>`;

export const mlopsIcon = new LabIcon({ name: 'jupyter-mlops:icon', svgstr: ICON_SVG });

type Tab = 'runs' | 'compare' | 'models' | 'timeline' | 'schedules';

export class MLOpsPanel extends Widget implements IPanelHost {
  private readonly views: Record<Tab, IView>;
  private readonly tabs: Record<Tab, HTMLButtonElement>;
  private readonly banner: HTMLElement;
  private readonly store: StoreBanner;
  private readonly runs: RunsView;
  private readonly comparison: CompareView;
  private current: Tab = 'runs';
  private readonly poll: Poll;
  private checkedServer = false;
  private readonly watched = new WeakSet<object>();

  constructor(private readonly bridge: NotebookBridge) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-mlops-panel');
    this.title.icon = mlopsIcon;
    this.title.caption = 'MLOps: runs, models, cell timeline and schedules';

    this.runs = new RunsView(bridge, this);
    this.comparison = new CompareView(this);
    this.views = {
      runs: this.runs,
      compare: this.comparison,
      models: new ModelsView(bridge, this),
      timeline: new TimelineView(bridge, this),
      schedules: new SchedulesView(this)
    };
    const tab = (name: Tab, label: string) => {
      const button = h(
        'button',
        {
          class: 'jp-mlops-tab',
          role: 'tab',
          'data-tab': name,
          'aria-selected': name === this.current ? 'true' : 'false'
        },
        label
      );
      button.addEventListener('click', () => this.switchTo(name));
      return button;
    };
    this.tabs = {
      runs: tab('runs', 'Runs'),
      compare: tab('compare', 'Compare'),
      models: tab('models', 'Models'),
      timeline: tab('timeline', 'Timeline'),
      schedules: tab('schedules', 'Schedules')
    };
    this.banner = h('div', { class: 'jp-mlops-banner', hidden: true, role: 'alert' });
    this.store = new StoreBanner(bridge);
    const body = h('div', { class: 'jp-mlops-body' });
    for (const [name, view] of Object.entries(this.views)) {
      view.node.hidden = name !== this.current;
      body.appendChild(view.node);
    }
    this.node.append(
      h(
        'header',
        { class: 'jp-mlops-header' },
        h('div', { class: 'jp-mlops-heading' }, 'MLOps'),
        h(
          'nav',
          { class: 'jp-mlops-tabs', role: 'tablist' },
          ...Object.values(this.tabs)
        )
      ),
      this.banner,
      this.store.node,
      body
    );

    this.poll = new Poll({
      auto: false,
      name: 'jupyter-mlops:refresh',
      factory: () => this.tick(),
      frequency: { interval: REFRESH_MS, backoff: true, max: 30 * 1000 },
      standby: () => !this.isVisible || 'when-hidden'
    });
    // The timeline follows the active notebook and its kernel.
    bridge.tracker.currentChanged.connect(this.onNotebookChanged, this);
  }

  requestRefresh(): void {
    void this.poll.refresh();
  }

  compare(target: ICompareTarget): void {
    this.comparison.show(target);
    this.switchTo('compare');
  }

  /** Refresh every `ms` milliseconds from now on (the settings' refresh interval). */
  setRefreshInterval(ms: number): void {
    this.poll.frequency = { ...this.poll.frequency, interval: ms };
  }

  showRun(runId: string): void {
    this.switchTo('runs');
    this.runs.select(runId);
  }

  switchTo(name: Tab): void {
    this.current = name;
    for (const [tab, view] of Object.entries(this.views)) {
      view.node.hidden = tab !== name;
      this.tabs[tab as Tab].setAttribute(
        'aria-selected',
        tab === name ? 'true' : 'false'
      );
    }
    this.requestRefresh();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.poll.dispose();
    this.bridge.tracker.currentChanged.disconnect(this.onNotebookChanged, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this.poll.isDisposed) {
      return;
    }
    void this.poll.start().then(() => this.poll.refresh());
  }

  private onNotebookChanged(): void {
    const panel = this.bridge.tracker.currentWidget;
    if (panel && !this.watched.has(panel)) {
      this.watched.add(panel);
      panel.sessionContext.kernelChanged.connect(() => {
        if (this.current === 'timeline') {
          this.requestRefresh();
        }
      });
    }
    if (this.current === 'timeline') {
      this.requestRefresh();
    }
  }

  private async tick(): Promise<void> {
    if (!this.isVisible) {
      return;
    }
    if (!this.checkedServer) {
      try {
        await api.version();
        this.checkedServer = true;
      } catch (error) {
        this.setBanner(
          'The jupyter_mlops server extension did not answer. Check that it is enabled ' +
            '(jupyter server extension list) and restart JupyterLab.'
        );
        throw error;
      }
    }
    try {
      await Promise.all([this.views[this.current].refresh(), this.store.refresh()]);
      this.setBanner(null);
    } catch (error) {
      this.setBanner(`Could not refresh: ${(error as Error).message}`);
      throw error; // the Poll backs off while this lasts
    }
  }

  private setBanner(message: string | null): void {
    this.banner.hidden = message === null;
    this.banner.textContent = message ?? '';
  }
}
