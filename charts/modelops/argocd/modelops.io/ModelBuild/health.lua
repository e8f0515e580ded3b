-- Argo CD health of a modelops.io ModelBuild: one training run, which ends Succeeded or Failed.
-- Only base and table functions: Argo CD runs a check from argocd-cm without the string and math libraries.
-- The deletion and generation prelude is repeated in all four modelops.io scripts: Argo CD loads each script alone.
local hs = {}
if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  return hs
end
local status = obj.status or {}
local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local observed = status.observedGeneration or 0
if conditions.Ready ~= nil and (conditions.Ready.observedGeneration or 0) > observed then
  observed = conditions.Ready.observedGeneration
end
local generation = obj.metadata.generation or 1
if observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local stalled = conditions.Stalled or {}
local reconciling = conditions.Reconciling or {}
if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Produced ModelVersion " .. (status.modelVersion or "(not recorded)")
elseif status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = (status.failureReason or "Failed") .. ": " .. (stalled.message or "see the training Job")
else
  hs.status = "Progressing"
  hs.message = (status.phase or "Pending") .. ": " .. (reconciling.message or "waiting for the training Job")
end
return hs
