-- Argo CD health of a modelops.io ModelDeployment: serves a version and rolls new ones out by canary steps.
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
local function isTrue(name)
  return conditions[name] ~= nil and conditions[name].status == "True"
end

local rollout = status.rollout or {}
local function canaryAt(verb)
  local message = "Canary " .. (rollout.canaryVersion or "") .. verb
  if rollout.step ~= nil then
    message = message .. " at step " .. (rollout.step + 1)
    local canary = (obj.spec.rollout or {}).canary
    if canary ~= nil and canary.steps ~= nil then
      message = message .. "/" .. #canary.steps
    end
  end
  if rollout.canaryWeight ~= nil then
    message = message .. " (" .. rollout.canaryWeight .. "% of replicas)"
  end
  if rollout.lastDecision ~= nil and rollout.lastDecision.reason ~= nil then
    message = message .. ": " .. rollout.lastDecision.reason
  end
  return message
end
if rollout.phase == "Paused" then
  -- An inconclusive step waits for an approver, as a paused Argo Rollout does.
  hs.status = "Suspended"
  hs.message = canaryAt(" paused")
elseif isTrue("Stalled") then
  hs.status = "Degraded"
  hs.message = conditions.Stalled.message or "Stalled"
elseif rollout.phase == "Progressing" then
  hs.status = "Progressing"
  hs.message = canaryAt("")
elseif isTrue("Ready") and status.servingVersionNumber ~= nil then
  hs.status = "Healthy"
  hs.message = "Serving version " .. status.servingVersionNumber .. " (" .. (status.servingVersion or "") .. ")"
else
  hs.status = "Progressing"
  hs.message = (conditions.Reconciling or {}).message or "Waiting for the servers to be ready"
end
return hs
