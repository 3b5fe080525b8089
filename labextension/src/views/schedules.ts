/**
 * Schedules: the store's triggers, each with what fires it, when it is next due and how its
 * last firing went (the gate's verdict and whether the alias moved). Read only: triggers
 * are made with schedule() in a notebook or the terminal, where they are signed.
 */
import { api, IFiring, ISchedule } from '../api';
import { formatDateTime, formatTime, h, notice } from '../dom';
import { IPanelHost, IView } from './view';

const KINDS: Record<string, string> = {
  cron: 'cron',
  every: 'every',
  watch: 'watches',
  alert: 'on alert of',
  code: 'on code change of'
};

/** What fires a trigger, in words: "every 1d", "cron 0 3 * * *", "watches data". */
export function whenText(schedule: ISchedule): string {
  if (schedule.kind === 'every') {
    const seconds = Number(schedule.spec);
    for (const [unit, size] of [
      ['d', 86400],
      ['h', 3600],
      ['m', 60]
    ] as const) {
      if (seconds >= size && seconds % size === 0) {
        return `every ${seconds / size}${unit}`;
      }
    }
    return `every ${seconds}s`;
  }
  const spec = schedule.kind === 'watch' || schedule.kind === 'code'
    ? schedule.spec.split('/').pop() ?? schedule.spec
    : schedule.spec;
  return `${KINDS[schedule.kind] ?? schedule.kind} ${spec}`;
}

/** The verdict of a firing in a few words. */
export function verdictText(firing: IFiring): string {
  if (firing.status === 'finished') {
    if (firing.promoted) {
      return `promoted v${firing.version}`;
    }
    return firing.version !== null ? `v${firing.version} not promoted` : 'ran';
  }
  return firing.status;
}

export class SchedulesView implements IView {
  readonly node: HTMLElement;
  private readonly list: HTMLUListElement;
  private signature = '';

  constructor(private readonly host: IPanelHost) {
    this.list = h('ul', {
      class: 'jp-mlops-list jp-mlops-schedule-list',
      'aria-label': 'Schedules'
    });
    this.node = h(
      'div',
      { class: 'jp-mlops-view jp-mlops-schedules' },
      h('div', { class: 'jp-mlops-scroll' }, this.list)
    );
  }

  async refresh(): Promise<void> {
    const { schedules } = await api.schedules();
    const signature = JSON.stringify(schedules);
    if (signature === this.signature) {
      return;
    }
    this.signature = signature;
    if (!schedules.length) {
      this.list.replaceChildren(
        h(
          'li',
          { class: 'jp-mlops-empty' },
          notice(
            'No schedules yet. Add one with mlops.schedule(NAME, NOTEBOOK, every="1d") ' +
              'or schedule(NAME, pipeline=NAME, ...).'
          )
        )
      );
      return;
    }
    this.list.replaceChildren(...schedules.map(s => this.row(s)));
  }

  private row(schedule: ISchedule): HTMLElement {
    const firing = schedule.last_firing;
    const next =
      schedule.next_due !== null
        ? h(
            'span',
            { class: 'jp-mlops-schedule-next', title: formatDateTime(schedule.next_due) },
            `next ${formatTime(schedule.next_due)}`
          )
        : h('span', { class: 'jp-mlops-schedule-next' }, 'on change');
    const last = firing
      ? h(
          'span',
          {
            class: 'jp-mlops-schedule-last',
            'data-status': firing.status,
            title: firing.message ?? firing.reason
          },
          `last ${formatTime(firing.started)}: ${verdictText(firing)}`
        )
      : h('span', { class: 'jp-mlops-schedule-last' }, 'never fired');
    const run = firing?.run_id;
    const item = h(
      'li',
      { class: 'jp-mlops-schedule', 'data-schedule': schedule.name },
      h(
        'div',
        { class: 'jp-mlops-row-main' },
        h('span', { class: 'jp-mlops-model-name' }, schedule.name),
        h('span', { class: 'jp-mlops-schedule-kind' }, whenText(schedule))
      ),
      h(
        'div',
        { class: 'jp-mlops-row-sub' },
        h('span', {}, `${schedule.action} ${schedule.target}`),
        schedule.model ? h('span', {}, `→ ${schedule.model}`) : null,
        schedule.trusted ? null : h('span', { class: 'jp-mlops-schedule-untrusted' }, 'not signed by you'),
        next,
        last
      )
    );
    if (run) {
      item.classList.add('jp-mlops-clickable');
      item.tabIndex = 0;
      item.title = 'Show the run of the last firing';
      item.addEventListener('click', () => this.host.showRun(run));
    }
    return item;
  }
}
