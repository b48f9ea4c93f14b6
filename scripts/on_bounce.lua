-- on_bounce(report): the category of an asynchronous bounce or complaint,
-- and whether the address must never be mailed again (hard).
--
-- report = { kind = "dsn"|"text"|"arf"|"autoreply", recipient=, action=,
--            status = "5.1.1", reply_code = 550, diagnostic = "...",
--            remote_mta=, feedback_type = "abuse", subject=, from= }
-- Returns { category = "...", hard = true|false }. Hard bounces and
-- complaints put the recipient on the tenant's suppression list.
--
-- The pattern table in rules/bounces.lua does the work, shared with
-- on_response through the "bounces" module so both speak the same
-- categories.

local bounces = require "bounces"

function on_bounce(report)
  -- A complaint: the person asked not to get this mail. Never again.
  if report.kind == "arf" then
    return { category = "feedback", hard = true }
  end
  -- An out-of-office reply is not a failure.
  if report.kind == "autoreply" then
    return { category = "vacation", hard = false }
  end
  return bounces.classify(report)
end
