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
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { NotebookBridge } from './notebook';
import { MLOpsPanel } from './panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:sidebar',
  description:
    'A left sidebar with the runs, models and cell timeline of the jupyter_mlops store.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    settings: ISettingRegistry | null
  ) => {
    const panel = new MLOpsPanel(new NotebookBridge(app, tracker));
    app.shell.add(panel, 'left', { rank: 900 });
    restorer?.add(panel, 'jupyter-mlops');
    // The refresh interval (seconds) of schema/plugin.json, followed as it changes.
    void settings?.load(plugin.id).then(loaded => {
      const apply = () =>
        panel.setRefreshInterval(
          Math.max(0.25, Number(loaded.get('refreshInterval').composite) || 1) * 1000
        );
      apply();
      loaded.changed.connect(apply);
    });
  }
};

export default plugin;
