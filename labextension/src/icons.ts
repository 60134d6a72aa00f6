import { LabIcon } from '@jupyterlab/ui-components';

import agentsSvg from '../style/agents.svg';

/** The side bar icon of the Agents panel (themed through jp-icon3). */
export const agentsIcon = new LabIcon({
  name: 'agcluster-jupyter:agents',
  svgstr: agentsSvg
});
