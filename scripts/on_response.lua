-- on_response(attempt): what one SMTP reply means for the recipient.
-- Every reply of a delivery passes through here: the greeting and other
-- connect-time replies, RCPT TO, and the reply after DATA; so do network
-- failures (attempt.network is true, with a synthetic 4xx reply).
--
-- attempt = { stage = "connect"|"helo"|"starttls"|"mail"|"rcpt"|"data",
--             code = 421, status = "4.7.0", text = "...", network = false,
--             recipient=, tenant=, class=, provider=, mx=, source=,
--             attempts = n (previous attempts), age = seconds since accepted }
-- Strings are never nil ("" when unknown).
--
-- Returns { action = "deliver"|"retry"|"bounce"|"suspend",
--           delay = "15m" or seconds (retry: next attempt; suspend: pause),
--           category = "...",  (bounce taxonomy, see rules/bounces.lua)
--           scope = "recipient"|"provider"|"source",
--           hard = true|false }  (bounce: never mail the address again; the
--                                 recipient goes on the suppression list)
-- "suspend" defers the recipient and pauses the scope: use it when the
-- receiver objects to the sender, not to the recipient.

local bounces = require "bounces"
local providers = require "rules.providers"

local by_name = {}
for _, p in ipairs(providers.providers or {}) do by_name[p.name] = p end

-- Greylisting: the receiver wants a second attempt after a few minutes;
-- the core's normal schedule would wait much longer.
local GREYLISTING = { "greylist", "grey%-list", "graylist", "gray%-list", "^45[01] .*try again later" }

-- Replies before any recipient was named are about the sending IP. A
-- permanent refusal there for one of these reasons is not the recipient's
-- fault: pause the IP and let the recipient try again (from another IP).
local SESSION = { connect = true, helo = true, starttls = true }
local IP_REASONS = { blocked = true, badreputation = true, requireptr = true }

local function suspension(list, line)
  for _, s in ipairs(list or {}) do
    if line:find(s.match) then return s end
  end
end

function on_response(a)
  if a.code >= 200 and a.code < 300 then
    return { action = "deliver" }
  end
  if a.network then
    return { action = "retry", category = "networkerror" }
  end

  local line = string.lower(a.code .. " " .. a.status .. " " .. a.text)
  local p = by_name[a.provider]
  local s = suspension(p and p.suspend, line) or suspension(providers.suspend, line)
  if s then
    return { action = "suspend", scope = s.scope, delay = s.delay, category = s.category,
             rate_factor = s.rate_factor }
  end

  local v = bounces.classify_reply(a.code, a.status, a.text)
  if a.code >= 500 then
    if SESSION[a.stage] and IP_REASONS[v.category] then
      return { action = "suspend", scope = "source", delay = "1h", category = v.category }
    end
    return { action = "bounce", category = v.category, hard = v.hard }
  end

  for _, pattern in ipairs(GREYLISTING) do
    if line:find(pattern) then
      return { action = "retry", delay = "5m", category = v.category }
    end
  end
  return { action = "retry", category = v.category }
end
