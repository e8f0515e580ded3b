-- Argo CD health of a modelops.io ModelMonitor: checks a deployment for drift, errors, latency and performance.
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

local raised = {}
for _, alert in ipairs({ "DriftDetected", "ErrorRateHigh", "LatencyHigh", "PerformanceDegraded" }) do
  if isTrue(alert) then
    table.insert(raised, alert .. ": " .. (conditions[alert].message or "raised"))
  end
end
if #raised > 0 then
  hs.status = "Degraded"
  hs.message = table.concat(raised, "; ")
elseif isTrue("Stalled") then
  hs.status = "Degraded"
  hs.message = conditions.Stalled.message or "Stalled"
elseif isTrue("Ready") then
  hs.status = "Healthy"
  hs.message = conditions.Ready.message or "Checked"
else
  hs.status = "Progressing"
  hs.message = "Waiting for the first check"
end
return hs
