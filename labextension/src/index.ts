/**
 * jupyter_mlops in JupyterLab: registers the sidebar. Everything else lives in panel.ts
 * and views/.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';

import { NotebookBridge } from './notebook';
import { MLOpsPanel } from './panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:sidebar',
  description:
    'A left sidebar with the runs, models and cell timeline of the jupyter_mlops store.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null
  ) => {
    const panel = new MLOpsPanel(new NotebookBridge(app, tracker));
    app.shell.add(panel, 'left', { rank: 900 });
    restorer?.add(panel, 'jupyter-mlops');
  }
};

export default plugin;
