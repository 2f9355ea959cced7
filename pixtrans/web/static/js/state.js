// The state every tab shares: loaded models, the selection (Models tab), the dataset, styles per model.

export const S = {
  models: [], byId: {}, selected: [], data: null,
  styles: {},      // model id -> editor state {seed, cluster, clusters, reference, refPreview}
  openStyle: {},   // model id -> style editor open in cards
  timing: null,    // last "translate -> image" time in ms (window.studioTiming for tests)
};

export function selectedModels() { return S.selected.map((id) => S.byId[id]).filter(Boolean); }
