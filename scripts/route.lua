-- route(msg, rcpt): which source IP one recipient's delivery leaves from.
-- Called before every attempt, so a policy change or a bad run of
-- deferrals moves traffic at once.
--
-- rcpt = { address=, domain=, provider=, mx=, attempts=, previous_source=,
--          capped=, pool= } where capped is a set of IPs at their warm-up cap
--          for this provider today (nil when none), and pool the pool an
--          operator rebound the recipient to (corriere queue rebind; nil
--          when none).
-- Returns { pool = "...", source = "IP", helo = "name", tls = "auto" };
-- without a source the system picks the address; tls comes from
-- rules/tls.lua (how the session is protected: MTA-STS, DANE, ...).
--
-- The strategy (data in rules/pools.lua): the same kind of message, from the
-- same sender, to the same provider leaves from the same IP, so receivers
-- see a consistent sender; different classes leave from different IPs where
-- there are several; an IP whose deferral or bounce rate at this provider
-- went bad hands its traffic to the reserve IPs until it recovers.

local core = require "core"
local pools = require "rules.pools"

-- rules/tls.lua is optional: a rules directory from before it existed
-- gets "auto" for everything.
local has_tls, tls_rules = pcall(require, "rules.tls")
if not has_tls then tls_rules = {} end

local health = pools.health or {}
local lanes = pools.lanes or {}

-- Weighted stable choice: the same key always picks the same IP while the
-- list stays the same.
local function pick(ips, class, sender, provider)
  local total = 0
  for _, ip in ipairs(ips) do total = total + (ip.weight or 1) end
  if total <= 0 then return nil end
  local n = core.hash(class, sender, provider) % total
  for _, ip in ipairs(ips) do
    n = n - (ip.weight or 1)
    if n < 0 then return ip end
  end
end

-- healthy: too few deliveries to judge, or rates below the thresholds.
local function healthy(ip, provider)
  local c = core.counts(ip, provider, "", health.window or "5m")
  if c.attempted < (health.min_attempts or 50) then return true end
  return c.deferred / c.attempted <= (health.max_deferral_rate or 1)
     and c.bounced / c.attempted <= (health.max_bounce_rate or 1)
end

-- The node's sources in the class's lane (see "lanes" in rules/pools.lua),
-- computed once per class.
local lane_cache = {}
local function node_lane(class)
  if lane_cache[class] then return lane_cache[class] end
  local sources = core.sources()
  local used = 1
  for _, l in pairs(lanes) do if l > used then used = l end end
  local n = math.min(#sources, used)
  local lane = math.min(lanes[class] or 1, n)
  local out = {}
  for i, s in ipairs(sources) do
    if (i - 1) % n + 1 == lane then out[#out + 1] = s end
  end
  lane_cache[class] = out
  return out
end

-- The TLS policy of a delivery: the tenant's, else the provider's, else
-- the class's, else the default (nil means auto).
local function tls_for(msg, rcpt, class)
  return (tls_rules.tenants or {})[msg:tenant() or ""]
      or (tls_rules.providers or {})[rcpt.provider]
      or (tls_rules.classes or {})[class]
      or tls_rules.default
end

function route(msg, rcpt)
  local class = msg:class() or "transactional"
  local tls = tls_for(msg, rcpt, class)
  local name = rcpt.pool or (pools.tenants or {})[msg:tenant() or ""] or pools.classes[class] or "transactional"
  local pool = pools.pools[name] or {}
  local ips = pool.ips or {}
  if #ips == 0 then ips = node_lane(class) end
  if #ips == 0 then
    return { pool = name, tls = tls } -- no configured sources: the system picks
  end

  local sender = msg:author() or msg:sender()
  -- IPs still warming up that have sent today's allowance to this provider
  -- (see warmup in rules/pools.lua): their traffic goes to the pool's other,
  -- warm IPs until tomorrow.
  local capped = rcpt.capped or {}
  local usable = {}
  for _, candidate in ipairs(ips) do
    if not capped[candidate.ip] then usable[#usable + 1] = candidate end
  end
  local ip = pick(#usable > 0 and usable or ips, class, sender, rcpt.provider)
  if capped[ip.ip] or not healthy(ip.ip, rcpt.provider) then
    local spares = {}
    for _, s in ipairs(pools.reserve or {}) do
      if not capped[s.ip] then spares[#spares + 1] = s end
    end
    local spare = pick(spares, class, sender, rcpt.provider)
    if spare and healthy(spare.ip, rcpt.provider) then
      return { pool = "reserve", source = spare.ip, helo = spare.helo, tls = tls }
    end
  end
  return { pool = name, source = ip.ip, helo = ip.helo, tls = tls }
end
