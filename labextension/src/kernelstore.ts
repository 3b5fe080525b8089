/**
 * Which store the active notebook's kernel writes to, asked of the kernel itself.
 *
 * The kernel side registers a comm target `jupyter_mlops` while the extension is loaded;
 * opening a comm to it brings one message back, `{store, why, session_id}`, then the
 * kernel closes it. A kernel without the extension closes the comm unanswered. A busy
 * kernel answers after its cell: until then the last answer stands.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import { api, IVersion } from './api';

export const COMM_TARGET = 'jupyter_mlops';
const PROBE_TIMEOUT_MS = 3000;
const RETRY_MS = 5000;
const SERVER_EVERY_MS = 10000;

export interface IKernelAnswer {
  store: string | null;
  why: string | null;
  session_id: string;
  error?: string;
}

/** What the kernel said: it records (and where), it has no extension, or no answer yet. */
export type KernelProbe =
  | { state: 'loaded'; answer: IKernelAnswer }
  | { state: 'not-loaded' }
  | { state: 'unknown' };

/** The kernel's store against the sidebar's. */
export interface IStoreCheck {
  /** The store the sidebar reads, as the server names it (relative to its root). */
  server: IVersion['store'];
  kernel: KernelProbe;
  /** False when the kernel records to another store; null when that is not known. */
  same: boolean | null;
}

interface ICached<T> {
  at: number;
  value: T;
}

interface IKnown extends ICached<KernelProbe> {
  /** The kernel ran code since it answered: the store may have changed. */
  ranSince: boolean;
}

const probes = new Map<string, IKnown>();
const pending = new Map<string, Promise<KernelProbe>>();
const comparisons = new Map<string, boolean>();
let server: ICached<IVersion> | null = null;
const watched = new WeakSet<Kernel.IKernelConnection>();

/**
 * Only code can change where a kernel records, so the kernel is asked again only once it
 * has run some (an `execute_input` on iopub, from any client); a kernel without the
 * extension only once it ran code that names it (`%load_ext jupyter_mlops`), since each
 * question it cannot answer costs a line in its log. A restart forgets it all.
 */
function watch(kernel: Kernel.IKernelConnection): void {
  if (watched.has(kernel)) {
    return;
  }
  watched.add(kernel);
  kernel.statusChanged.connect((_, status) => {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      probes.delete(kernel.id);
    }
  });
  kernel.iopubMessage.connect((_, msg) => {
    const known = probes.get(kernel.id);
    if (known && msg.header.msg_type === 'execute_input') {
      const code = String((msg.content as { code?: unknown }).code ?? '');
      if (known.value.state !== 'not-loaded' || /jupyter_mlops|load_ext/.test(code)) {
        known.ranSince = true;
      }
    }
  });
}

function ask(kernel: Kernel.IKernelConnection): Promise<KernelProbe> {
  return new Promise<KernelProbe>(resolve => {
    let settled = false;
    const settle = (probe: KernelProbe) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(probe);
      }
    };
    const timer = setTimeout(() => settle({ state: 'unknown' }), PROBE_TIMEOUT_MS);
    try {
      const comm = kernel.createComm(COMM_TARGET);
      comm.onMsg = msg =>
        settle({ state: 'loaded', answer: msg.content.data as unknown as IKernelAnswer });
      comm.onClose = () => settle({ state: 'not-loaded' });
      comm.open({});
    } catch {
      settle({ state: 'unknown' }); // a connection that does not handle comms
    }
  });
}

/**
 * What the kernel says of its store: asked once, then again only after it ran code (and
 * is idle again: a question would wait behind the cell), the last answer in between. A
 * kernel that did not answer in time is asked again after a few seconds.
 */
export async function probeKernel(
  kernel: Kernel.IKernelConnection | null | undefined
): Promise<KernelProbe> {
  if (!kernel) {
    return { state: 'unknown' };
  }
  watch(kernel);
  const known = probes.get(kernel.id);
  const stale =
    !known ||
    known.ranSince ||
    (known.value.state === 'unknown' && Date.now() - known.at > RETRY_MS);
  if (!stale || kernel.status !== 'idle') {
    return known?.value ?? { state: 'unknown' };
  }
  let asking = pending.get(kernel.id);
  if (!asking) {
    asking = ask(kernel).finally(() => pending.delete(kernel.id));
    pending.set(kernel.id, asking);
  }
  const probe = await asking;
  if (probe.state === 'unknown' && known) {
    // No answer in time: keep the last one until the kernel runs code again.
    known.at = Date.now();
    known.ranSince = false;
    return known.value;
  }
  probes.set(kernel.id, { at: Date.now(), value: probe, ranSince: false });
  return probe;
}

async function serverVersion(): Promise<IVersion> {
  if (!server || Date.now() - server.at > SERVER_EVERY_MS) {
    server = { at: Date.now(), value: await api.version() };
  }
  return server.value;
}

/** The active notebook's kernel store against the one this sidebar reads. */
export async function checkStore(panel: NotebookPanel | null): Promise<IStoreCheck> {
  const version = await serverVersion();
  const kernel = await probeKernel(panel?.sessionContext.session?.kernel);
  let same: boolean | null = null;
  if (kernel.state === 'loaded' && kernel.answer.store) {
    const path = kernel.answer.store;
    if (!comparisons.has(path)) {
      const answer = await api.compareStore(path);
      comparisons.set(path, answer.kernel_store?.same ?? true);
    }
    same = comparisons.get(path) ?? null;
  }
  return { server: version.store, kernel, same };
}

/** What the banner says of a kernel that records elsewhere: both stores, and the fix. */
export function elsewhere(check: IStoreCheck): string {
  return (
    `This notebook's kernel records to ${kernelStore(check)}, not to the store this ` +
    `sidebar reads (${check.server.path}). Drop the store setting from the notebook ` +
    '(JUPYTER_MLOPS_STORE, %mlops store) and restart its kernel, or start JupyterLab ' +
    `with JUPYTER_MLOPS_STORE=${kernelStore(check)}.`
  );
}

/** The store the kernel named, or null when it has not said. */
export function kernelStore(check: IStoreCheck): string | null {
  return check.kernel.state === 'loaded' ? check.kernel.answer.store : null;
}
