-- Tenant "example": a demo account for trying Corriere on a local machine.
--
-- SMTP AUTH user "example", password "corriere-demo". This is a LOCAL-DEMO
-- credential, published here on purpose: replace password_hash (make one with
-- `corriere rules passwd`) or delete this file before the submission port is
-- reachable by anyone else.
--
-- The file name is the tenant's name. Fields:
--   password_hash   bcrypt hash of the SMTP AUTH password; never plain text
--   sender_domains  domains the tenant may use in MAIL FROM and From: (and
--                   their subdomains); leave it out to allow any domain
--   null_sender     true: the tenant may use MAIL FROM:<> (default false)
--   address_literals true: the tenant may send to user@[192.0.2.1]
--                   (default false)
--   reenvelope      true: the platform's bounce domain becomes the envelope
--                   sender and Sender:, From: stays the author's, bounces go
--                   back to the author (see scripts/rewrite.lua)
--   bounce_domain   with reenvelope, the domain of the envelope sender
--   return_path_domain  the tenant's own bounce domain, e.g. "bounce.example.com":
--                   every message leaves with a per-recipient VERP envelope
--                   sender on it (From: unchanged), so SPF aligns with From:
--                   and late bounces and complaints come home. Needs an MX
--                   to the bounce listener and an SPF record including the
--                   platform (README, "Re-enveloping, bounces and
--                   suppression")
--   suppression     "reject" refuses suppressed recipients at RCPT TO,
--                   "drop" accepts them and does not deliver
--   unsubscribe     List-Unsubscribe added to newsletters that lack one:
--                   { url = "https://...", mailto = "...", one_click = true }
--   api_keys        hashes of the keys of the HTTP injection API (make a key
--                   with `corriere rules apikey example`); never the keys
--   webhooks        endpoints for the tenant's events:
--                   { { url = "https://...", secret = "...", events = {
--                   "delivered", "bounced", ... } } } (see the README)
--   classify        explicit classification rules, first match wins. Each
--                   rule gives Lua patterns (matched against lower-cased
--                   values, so write them in lower case) for any of
--                   sender (envelope), from (From: address), subject; and
--                   the class, optionally campaign and priority, to assign.

return {
  password_hash = "$2a$10$uXZv.LP/VxdoUtm2raNuq.mjKNDqL74GJ4Kp0bhymYC1Jfq3FVn46",
  sender_domains = { "example.com", "example.org" },
  reenvelope = false,
  suppression = "reject",

  unsubscribe = {
    url = "https://example.com/unsubscribe",
    mailto = "unsubscribe@example.com",
    one_click = true,
  },

  classify = {
    -- Security alerts must arrive within a minute: critical.
    { from = "^alerts@example%.com$", class = "critical" },
    -- One-time passwords, whoever sends them.
    { subject = "verification code", class = "critical" },
  },
}
