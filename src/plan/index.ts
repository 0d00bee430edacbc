// The planner's public surface: plan an operation, move states through the metadata tree, show and redact plans.
export {planCluster, type PlanInput} from './plan.js'
export {treeOf, stateFromTree, diffTrees, nodeOfKey, chunkChanges, clusterRoot, TreeDecodeError, type TreeOp} from './tree.js'
export {renderPlan, hasChanges, redactPlan, REDACTED, type RenderOptions} from './show.js'
export {unifiedDiff} from './diff.js'
export {canonicalJson, sha256} from './canonical.js'
export type {Step, StepKind} from './steps.js'
export type {Inventory, InventoryHost, HostUsage} from './inventory.js'
export type * from './types.js'
