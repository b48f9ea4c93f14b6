-- classify(msg): what kind of message this is, decided at ingest.
--
-- Returns { tenant = "...", class = "...", campaign = "...", priority = n }
--   class     "critical"       must arrive now (OTP codes, prescriptions, alerts):
--                              jumps every queue, leaves from transactional IPs
--             "transactional"  sent by a system to one person about their account
--             "personal"       written by a person, one to one
--             "newsletter"     the same content to many people
--   campaign  groups the messages of one send (statistics, Feedback-ID)
--   priority  orders messages within a class; higher goes first
--   tenant    the owner; leave it out to keep the authenticated tenant
--
-- The order of the checks is the order of trust: what the tenant's own
-- rules say (rules/tenants/<tenant>.lua, "classify" list), then what the
-- sender declared, then what the message looks like.

local tenants = require "rules.tenants"

local PRIORITY = { critical = 100, transactional = 50, personal = 50, newsletter = 0 }

-- A message without list headers sent to more recipients than this in one
-- submission is bulk all the same: transactional mail goes to one person.
local BULK_RECIPIENTS = 20

-- Mail clients (User-Agent / X-Mailer): a person wrote this message.
local MAIL_CLIENTS = { "thunderbird", "outlook", "apple mail", "iphone mail", "k%-9", "roundcube",
  "evolution", "mutt", "airmail", "spark", "horde", "sogo" }

local function lower(s) return s and string.lower(s) or "" end

-- A tenant rule matches when every field it gives matches (Lua patterns,
-- lower case): sender (envelope), from (From: address), subject.
local function rule_matches(rule, msg)
  if rule.sender and not lower(msg:sender()):find(rule.sender) then return false end
  if rule.from and not lower(msg:from()):find(rule.from) then return false end
  if rule.subject and not lower(msg:subject()):find(rule.subject) then return false end
  return true
end

local function any_match(value, patterns)
  for _, p in ipairs(patterns) do
    if value:find(p) then return true end
  end
  return false
end

-- The campaign: declared by the sender, or the mailing list's id.
local function campaign_of(msg)
  local c = msg:header("X-Corriere-Campaign") or msg:campaign()
  if c then return c end
  local list = msg:header("List-Id")
  return list and list:match("<([^>]+)>") or ""
end

local function result(msg, class, campaign, priority)
  return { class = class, campaign = campaign or campaign_of(msg), priority = priority or PRIORITY[class] }
end

function classify(msg)
  -- 1. The tenant's explicit rules: "messages of this account from sender Y
  --    with subject Z are critical". First match wins.
  local t = tenants[msg:tenant() or ""]
  for _, rule in ipairs(t and t.classify or {}) do
    if rule_matches(rule, msg) then
      return result(msg, rule.class, rule.campaign, rule.priority)
    end
  end

  -- 2. A class the sender declared (HTTP API field or X-Corriere-Class).
  --    Critical is not accepted this way: it jumps every queue, so only
  --    the tenant rules above can grant it.
  local declared = lower(msg:header("X-Corriere-Class") or msg:class())
  if declared == "newsletter" or declared == "transactional" or declared == "personal" then
    return result(msg, declared)
  end

  -- 3. List mail: the signals providers themselves look at.
  local precedence = lower(msg:header("Precedence"))
  if msg:has_header("List-Id") or msg:has_header("List-Unsubscribe")
      or precedence == "bulk" or precedence == "list" or precedence == "junk" then
    return result(msg, "newsletter")
  end

  -- 4. Volume: one submission to many recipients.
  if msg:recipient_count() > BULK_RECIPIENTS then
    return result(msg, "newsletter")
  end

  -- 5. A person writing: a reply in a thread, or a mail client's signature.
  local client = lower(msg:header("User-Agent") or msg:header("X-Mailer"))
  if msg:has_header("In-Reply-To") or msg:has_header("References") or any_match(client, MAIL_CLIENTS) then
    return result(msg, "personal")
  end

  -- 6. Everything else is a system writing to one person.
  return result(msg, "transactional")
end
