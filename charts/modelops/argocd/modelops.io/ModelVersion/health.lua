-- Argo CD health of a modelops.io ModelVersion: checked against thresholds and the champion, then approved.
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

local ready = conditions.Ready or {}
if status.stage == "Approved" then
  hs.status = "Healthy"
  hs.message = "Approved by " .. (status.approvedBy or "policy")
elseif status.stage == "Archived" then
  -- Archived is the end of a good life (a newer version was approved), not a failure.
  hs.status = "Healthy"
  hs.message = "Archived: superseded by a newer approved version"
elseif status.stage == "Rejected" and ready.reason == "ValidationFailed" then
  hs.status = "Degraded"
  hs.message = "Failed validation: " .. (ready.message or "see status.checks")
elseif status.stage == "Rejected" then
  local approval = obj.spec.approval or {}
  hs.status = "Degraded"
  hs.message = "Rejected by " .. (approval.by or "an approver") .. ": " .. (approval.reason or "no reason given")
elseif status.stage == "Validated" then
  -- Passed every check; a person decides in spec.approval. Suspended is Argo CD's "waiting on a human".
  hs.status = "Suspended"
  hs.message = "Waiting for approval: passed all checks"
else
  hs.status = "Progressing"
  hs.message = "Waiting for the validation checks"
end
return hs
