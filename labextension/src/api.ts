/**
 * The REST API of the jupyter_mlops server extension, typed.
 *
 * Every request goes through ServerConnection.makeRequest, which adds the token and the
 * XSRF header jupyter_server requires.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A metric value the JSON could not carry as a number. */
export type NonFinite = 'nan' | 'inf' | '-inf';

/** Every run status, as jupyter_mlops.entities.RUN_STATUSES lists them (a test compares). */
export const RUN_STATUSES = ['RUNNING', 'FINISHED', 'FAILED', 'KILLED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** What the runs list and a run's details both say of a run. */
interface IRunBase {
  run_id: string;
  name: string | null;
  experiment: string;
  status: RunStatus;
  start_time: number;
  end_time: number | null;
  duration_s: number | null;
  session_id: string | null;
  cell_id: string | null;
  execution_count: number | null;
  error_type: string | null;
  /** The run this one is a child of (a search's candidate), or null. */
  parent_run_id: string | null;
}

export interface IRunSummary extends IRunBase {
  /** How many child runs it has; they are listed with ``parent=<run_id>``. */
  children: number;
  metrics: Record<string, number | null>;
  nonfinite?: Record<string, NonFinite>;
  /** The file name of the notebook the run's kernel ran, or null. */
  notebook_name?: string | null;
  /** When the run's kernel started (its session), or null. */
  session_started?: number | null;
  /** Whether the run is a sweep's parent (its children are its trials). */
  sweep?: boolean;
  /** Who made the run; the tracking server it was pulled from (null: made here). */
  user?: string | null;
  origin?: string | null;
}

/** One run of a comparison: each metric as [latest, min, max] (null when not finite). */
export interface ICompareRun {
  run_id: string;
  name: string | null;
  status: RunStatus;
  experiment: string;
  parent_run_id: string | null;
  params: Record<string, unknown>;
  metrics: Record<string, [number | null, number | null, number | null]>;
}

export interface ICompare {
  runs: ICompareRun[];
  /** Params that vary between the runs, those that moved the metric most first. */
  params: string[];
  metrics: string[];
  importance: Record<string, number>;
  metric: string | null;
  direction: 'maximize' | 'minimize';
  summary: 'latest' | 'min' | 'max';
  more: number;
  limit: number;
  /** Whether a compared run (a sweep's parent too) still runs: worth asking again. */
  running: boolean;
}

export interface IRunPage {
  runs: IRunSummary[];
  total: number;
  offset: number;
  limit: number;
  metric_keys: string[];
  experiments: string[];
  now: number;
}

export interface IMetricPoint {
  step: number;
  value: number | null;
  timestamp: number;
  nonfinite?: NonFinite;
}

export interface IMetric {
  key: string;
  value: number | null;
  nonfinite?: NonFinite;
  steps: number;
  history: IMetricPoint[];
}

export interface IArtifact {
  name: string;
  kind: string;
  sha256: string;
  size: number;
  media_type: string | null;
}

export interface IDatasetInput {
  name: string;
  role: string;
  fingerprint: string;
  kind: string;
  shape: number[];
  columns: string[] | null;
}

export interface IRunDetail extends IRunBase {
  notebook_path: string | null;
  notebook_name: string | null;
  source: string | null;
  params: Record<string, unknown>;
  metrics: IMetric[];
  tags: Record<string, string>;
  artifacts: IArtifact[];
  inputs: IDatasetInput[];
  error: string | null;
  traceback: string | null;
  now: number;
  /** The kernel of this server that made the run, while it runs; else null. */
  kernel_id?: string | null;
}

export interface IModelSummary {
  name: string;
  created: number | null;
  versions: number;
  latest_version: number | null;
  latest_run_id: string | null;
  updated: number | null;
  aliases: Record<string, number>;
}

export interface ILineage {
  run: {
    run_id: string;
    name: string | null;
    experiment: string;
    status: RunStatus;
    cell_id: string | null;
  } | null;
  cell: {
    seq: number;
    cell_id: string | null;
    execution_count: number | null;
    source: string;
    session_id: string;
  } | null;
  notebook_path: string | null;
  datasets: unknown[];
}

export interface IModelVersion {
  version: number;
  created?: number;
  sha256?: string;
  size?: number;
  serializer?: string;
  framework?: string | null;
  class_name?: string | null;
  run_id?: string | null;
  variable?: string | null;
  aliases: string[];
  lineage: ILineage;
  /** The latest values of its run's main metrics (a few), in the order to show them. */
  metrics?: Record<string, number | null>;
  nonfinite?: Record<string, NonFinite>;
  [column: string]: unknown;
}

/** What setting, moving or removing an alias did. */
export interface IAliasChange {
  name: string;
  alias: string;
  /** Where it points now; null once removed. */
  version: number | null;
  /** Where it pointed before; null when it is new. */
  previous: number | null;
}

export interface IModelDetail {
  name: string;
  created: number | null;
  aliases: Record<string, number>;
  versions: IModelVersion[];
}

export interface ISession {
  session_id: string;
  started: number;
  notebook_path: string | null;
  notebook_name: string | null;
  python: string | null;
  cells: number;
  last_started: number | null;
  alive: boolean;
  current: boolean;
}

export interface ISessionPage {
  sessions: ISession[];
  total: number;
}

export interface ICellExecution {
  seq: number;
  execution_count: number | null;
  cell_id: string | null;
  source: string;
  started: number;
  duration_s: number | null;
  status: string;
  error: string | null;
  run_id: string | null;
  position: number | null;
  out_of_order: boolean;
  /** Inputs of the run a later execution redefined: "alpha redefined in [7]". */
  stale: string | null;
  /** Inputs whose object a later execution may have changed in place. */
  possibly_stale: string | null;
  stale_inputs: IStaleInput[];
  /** Files the execution wrote, relative to the server root. */
  files: string[];
}

export interface IStaleInput {
  name: string;
  change: 'redefined' | 'possibly modified';
  seq: number;
  execution_count: number | null;
}

export interface ICellPage {
  session_id: string;
  notebook_path: string | null;
  total: number;
  cells: ICellExecution[];
}

export interface IVersion {
  version: string;
  store: { exists: boolean; path: string; schema_version: number | null };
  /** With ?kernel_store=PATH: is the store a kernel named the one the server reads? */
  kernel_store?: { same: boolean; path: string };
}

export type Query = Record<string, string | number | undefined | null>;

function apiUrl(path: string[], query?: Query): string {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(
    settings.baseUrl,
    'jupyter-mlops',
    'api',
    ...path.map(encodeURIComponent)
  );
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') {
      search.append(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `${url}?${text}` : url;
}

async function send(
  path: string[],
  query?: Query,
  init: RequestInit = {}
): Promise<Response> {
  const settings = ServerConnection.makeSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(path, query), init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      const body = await response.json();
      if (body && typeof body.message === 'string') {
        message = body.message;
      }
    } catch {
      // not JSON: keep the status text
    }
    throw new ServerConnection.ResponseError(response, message);
  }
  return response;
}

/**
 * GET one endpoint of /jupyter-mlops/api/ and parse its JSON.
 *
 * @param path - the path segments after the prefix, each URL-encoded here
 * @param query - query parameters; empty values are left out
 */
export async function requestAPI<T>(path: string[], query?: Query): Promise<T> {
  const response = await send(path, query);
  return (await response.json()) as T;
}

/** The bytes of an artifact, fetched with the user's credentials. */
export async function fetchArtifact(sha256: string): Promise<Blob> {
  const response = await send(['artifacts', sha256]);
  return await response.blob();
}

/**
 * POST (or DELETE) to one endpoint and parse its JSON answer. makeRequest adds the token
 * and the XSRF header, which the server checks on every write.
 */
export async function writeAPI<T>(
  path: string[],
  method: 'POST' | 'DELETE',
  body?: unknown
): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  const response = await send(path, undefined, init);
  return (await response.json()) as T;
}

/** How a trigger's latest firing went (jupyter_mlops.monitoring.scheduler). */
export interface IFiring {
  started: number;
  finished: number | null;
  /** running, finished, failed, refused or missed */
  status: string;
  reason: string;
  run_id: string | null;
  version: number | null;
  promoted: boolean;
  message: string | null;
}

/** A trigger of the store (jupyter_mlops.schedule). */
export interface ISchedule {
  name: string;
  /** cron, every, watch, alert or code */
  kind: string;
  spec: string;
  action: 'notebook' | 'pipeline';
  /** The notebook's file name or the pipeline's folder name. */
  target: string;
  model: string | null;
  enabled: boolean;
  /** Whether this user signed it: one that is not never fires. */
  trusted: boolean;
  /** When a cron or period trigger is next due; null for one that fires on a change. */
  next_due: number | null;
  last_checked: number | null;
  last_firing: IFiring | null;
}

/** The first rows of a run's input, every value as text (GET runs/<id>/data/<fp>). */
export interface IDataPreview {
  kept: boolean;
  columns: string[];
  rows: string[][];
  total_rows: number | null;
  note: string | null;
}

export const api = {
  runs: (query: Query) => requestAPI<IRunPage>(['runs'], query),
  run: (runId: string) => requestAPI<IRunDetail>(['runs', runId]),
  compare: (query: Query) => requestAPI<ICompare>(['compare'], query),
  models: () => requestAPI<{ models: IModelSummary[] }>(['models']),
  model: (name: string) => requestAPI<IModelDetail>(['models', name]),
  schedules: () => requestAPI<{ schedules: ISchedule[]; now: number }>(['schedules']),
  dataPreview: (runId: string, fingerprint: string) =>
    requestAPI<IDataPreview>(['runs', runId, 'data', fingerprint]),
  modelCard: (name: string, version: number) =>
    requestAPI<{ html: string }>([
      'models',
      name,
      'versions',
      String(version),
      'card'
    ]),
  sessions: (query: Query) => requestAPI<ISessionPage>(['sessions'], query),
  cells: (session: string) =>
    requestAPI<ICellPage>(['cells'], { session, limit: 1000 }),
  version: () => requestAPI<IVersion>(['version']),
  setAlias: (name: string, alias: string, version: number) =>
    writeAPI<IAliasChange>(['models', name, 'aliases'], 'POST', { alias, version }),
  deleteAlias: (name: string, alias: string) =>
    writeAPI<IAliasChange>(['models', name, 'aliases', alias], 'DELETE'),
  compareStore: (kernelStore: string) =>
    requestAPI<IVersion>(['version'], { kernel_store: kernelStore })
};
