-- shape(provider, source): how fast one source IP may send to a provider.
-- The core asks once per (provider, source) pair and policy generation and
-- keeps the answer, so this may be as thorough as it likes.
--
-- source is an IP address, "" when the system picks the address, or "*"
-- for the provider as a whole: every source together (the provider's
-- "total" limits in rules/providers.lua, none by default).
-- Returns a limits table (fields described in rules/providers.lua); a
-- missing field means "no limit of this kind".

local providers = require "rules.providers"
local pools = require "rules.pools"

local by_name = {}
for _, p in ipairs(providers.providers or {}) do by_name[p.name] = p end

function shape(provider, source)
  local p = by_name[provider]
  local limits = {}
  if source == "*" then
    for k, v in pairs(p and p.total or {}) do limits[k] = v end
    return limits
  end
  for k, v in pairs(p and p.limits or providers.default or {}) do
    limits[k] = v
  end
  -- An IP still warming up gets the lower of its warm-up caps and the
  -- provider's limits: new IPs earn reputation by sending little and well.
  local caps = (pools.warmup or {})[source]
  for k, v in pairs(caps or {}) do
    -- start and daily are the warm-up schedule, which the core enforces.
    if type(v) == "number" and (limits[k] == nil or v < limits[k]) then limits[k] = v end
  end
  return limits
end
