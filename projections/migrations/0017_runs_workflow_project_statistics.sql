-- A workflow belongs to one project, so `project = $1 AND workflow_id = $2` is no more selective
-- than the workflow alone; without this the planner multiplies the two selectivities, expects a
-- handful of rows and ANDs two bitmaps then sorts every match (bench.query_scale, 1 M runs:
-- a workflow + status list took 444-562 ms). With the dependency it reads runs_by_workflow in
-- order and stops at the page (0.6-0.8 ms). Statistics only: no index for the projector to keep.
CREATE STATISTICS runs_workflow_project (dependencies) ON workflow_id, project FROM runs;
