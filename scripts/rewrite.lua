-- rewrite(msg): edit a classified message before it is signed and spooled.
--
-- Edits are made on the message itself; nothing is returned:
--   msg:set_header(name, value)     replace every field called name
--   msg:add_header(name, value)     add a field at the top
--   msg:remove_header(name)         remove every field called name
--   msg:set_sender(address)         the envelope sender (MAIL FROM)
--   msg:set_author(address)         who receives this message's bounces
-- msg:class(), msg:campaign() and msg:tenant() hold what classify decided.
-- Fields nobody edits leave exactly as they arrived, so signatures made
-- upstream stay valid.

local tenants = require "rules.tenants"

-- Signals the submitter gave us; the world has no use for them. A
-- submitted X-Corriere-Ref goes too: the core puts its own on every
-- message, and a copied one must not speak for this message.
local INTERNAL = { "X-Corriere-Class", "X-Corriere-Campaign", "X-Corriere-Ref" }

function rewrite(msg)
  local t = tenants[msg:tenant() or ""] or {}
  local class = msg:class() or "transactional"
  local campaign = msg:campaign()

  for _, name in ipairs(INTERNAL) do
    msg:remove_header(name)
  end

  -- Feedback-ID lets Gmail's feedback loop report complaints per campaign,
  -- customer and kind of mail, so a bad campaign shows up before it hurts
  -- the IP. Format "campaign:customer:type:sender", fields left of the
  -- sender id optional.
  local ids = {}
  if campaign then ids[#ids + 1] = campaign end
  if msg:tenant() then ids[#ids + 1] = msg:tenant() end
  ids[#ids + 1] = class
  ids[#ids + 1] = "corriere"
  msg:set_header("Feedback-ID", table.concat(ids, ":"))

  -- One stable campaign header lets receivers group the messages of a send:
  -- once the first deliveries go well, the rest of the campaign follows.
  if campaign then
    msg:set_header("X-Campaign-Id", campaign)
  end

  if class == "newsletter" then
    -- Keep out-of-office replies away from bulk mail.
    if not msg:has_header("Precedence") then
      msg:set_header("Precedence", "bulk")
    end
    -- Gmail and Yahoo require an unsubscribe link from bulk senders, and
    -- one-click (RFC 8058) when it is a URL. The tenant's url must accept
    -- the POST that one_click announces.
    local u = t.unsubscribe
    if u and not msg:has_header("List-Unsubscribe") then
      local links = {}
      if u.url then links[#links + 1] = "<" .. u.url .. ">" end
      if u.mailto then links[#links + 1] = "<mailto:" .. u.mailto .. "?subject=unsubscribe>" end
      if #links > 0 then
        msg:set_header("List-Unsubscribe", table.concat(links, ", "))
        if u.url and u.one_click then
          msg:set_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        end
      end
    end
  end

  -- Re-enveloping: the platform takes responsibility for delivery (envelope
  -- sender and Sender: on the tenant's bounce domain, which SPF covers),
  -- while From: stays the real author, replies reach them through
  -- Reply-To:, and their bounces come back to them (msg:set_author).
  if t.reenvelope and not msg:author() then
    msg:set_author(msg:sender())
    if not msg:has_header("Reply-To") and msg:header("From") then
      msg:set_header("Reply-To", msg:header("From"))
    end
    if t.bounce_domain then
      local platform = "bounces@" .. t.bounce_domain
      msg:set_sender(platform)
      msg:set_header("Sender", platform)
    end
  end

  -- A custom return path (return_path_domain, e.g. "bounce.shop.example",
  -- whose MX is the bounce listener and whose SPF includes the platform):
  -- the envelope sender moves to the tenant's own bounce domain, where the
  -- core gives each recipient a signed VERP address, so SPF passes for a
  -- domain aligned with From: under relaxed DMARC and every late bounce
  -- and complaint comes home. From: stays the tenant's; the
  -- author still gets the bounces (msg:set_author). A null sender stays
  -- null: that mail is a bounce itself.
  if t.return_path_domain and msg:sender() ~= "" then
    if not msg:author() then
      msg:set_author(msg:sender())
    end
    msg:set_sender("bounces@" .. t.return_path_domain)
  end
end
