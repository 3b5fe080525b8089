/** What the panel needs from each of its views. */
export interface IView {
  /** The view's root element, shown while its tab is selected. */
  readonly node: HTMLElement;
  /** Fetch what changed and redraw; called by the panel's Poll while visible. */
  refresh(): Promise<void>;
}

/** What views can ask of the panel. */
export interface IPanelHost {
  /** Refresh now rather than at the next tick (after a click or a filter change). */
  requestRefresh(): void;
  /** Show a run's details in the Runs view. */
  showRun(runId: string): void;
}
