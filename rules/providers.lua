-- Mailbox providers, recognised by the host names of their MX servers.
--
-- Corriere looks up the MX of every recipient domain and names its provider
-- with this list, so every domain hosted by Google Workspace shares Gmail's
-- queues and limits, every Office 365 customer shares Microsoft's, and so on.
-- Queues, limits and statistics are kept per provider.
--
-- mx       Host patterns, matched against the whole MX host name, ignoring
--          case. "*" matches any run of characters, dots included:
--          "*.google.com" matches "alt1.aspmx.l.google.com" but not
--          "google.com" itself. The first provider in this file with a
--          matching pattern wins, so list specific patterns first. An MX host
--          that matches nothing is a provider of its own, named after its
--          domain ("mx1.example.net" -> "example.net").
--
-- limits   What scripts/shape.lua returns for one source IP sending to the
--          provider. A missing field means "no limit of this kind".
-- total    Optional limits for the provider as a whole, every source IP
--          together (same fields as limits): a cap on all connections or
--          the whole volume a provider accepts from this platform.
--            connections              concurrent SMTP connections
--            messages_per_connection  messages before closing the connection
--            recipients_per_message   RCPT TO commands per transaction
--            per_second, per_minute, per_hour, per_day   messages sent
--            burst                    messages allowed at once above the rate
--            critical_reserve         share of per_hour and per_day that only
--                                     critical mail may use (0.1 by default
--                                     where either is set; 0 keeps none)
--            suspend_delay            how long a suspension lasts when the
--                                     suspend rule names no delay ("10m" by
--                                     default)
--            recovery_interval        how long a slowed-down rate waits
--                                     without a new complaint before it
--                                     recovers a step ("30s" by default)
--            recovery_step            how much the rate grows at each step,
--                                     above 1 (1.25 by default)
--          The last three apply to the source's own suspensions and
--          slow-downs; in total, to the provider-wide ones (where total sets
--          none, those of the source that got the reply apply).
--
--          Why critical_reserve: hourly and daily volumes are shared by every
--          class, and a newsletter run can use one up in minutes. Other mail
--          stops at (1 - critical_reserve) of each window, so password
--          resets and alerts still leave at once; with per_hour = 2000 and
--          the default, newsletters may send 1800 an hour and critical mail
--          the last 200. `corriere queue summary` shows it as "10%critical".
--
--          A reload applies new limits to running lanes within a second:
--          lowering connections closes the excess ones after the message in
--          flight; rates keep the allowance already used (an unchanged
--          limit keeps its state, a changed one carries it over), so a
--          reload never grants a fresh burst.
--
-- suspend  Replies that mean "stop sending here for a while", checked by
--          scripts/on_response.lua before anything else. match is a Lua
--          pattern searched in the lower-cased reply "code status text"
--          (e.g. "421 4.7.28 our system has detected..."); scope is "source"
--          (this IP at this provider) or "provider" (every IP); delay is how
--          long to pause ("90s", "15m", "2h"); category names the reason;
--          rate_factor (optional, between 0 and 1) also cuts the send rate
--          of the scope, which the core then restores step by step (by
--          recovery_step every recovery_interval without a new complaint:
--          x1.25 every 30 seconds by default) after the pause.
--          The list at the top level applies to every provider, after the
--          provider's own list.
--
-- The numbers are starting points for warm, reputable IPs. Providers do not
-- publish most of them; they come from their postmaster pages where those
-- exist and from what their servers answer when pushed harder.

return {
  -- Any receiver not listed below: polite enough for a small mail server.
  default = {
    connections = 5,
    messages_per_connection = 100,
    recipients_per_message = 50,
    per_minute = 300,
  },

  -- Replies that mean the same thing at every provider.
  suspend = {
    { match = "too many connections", scope = "source", delay = "5m", category = "toomanyconn" },
    { match = "too many concurrent", scope = "source", delay = "5m", category = "toomanyconn" },
    { match = "too many sessions", scope = "source", delay = "5m", category = "toomanyconn" },
    { match = "slow down", scope = "source", delay = "15m", category = "speeding", rate_factor = 0.5 },
    { match = "rate limit", scope = "source", delay = "15m", category = "speeding", rate_factor = 0.5 },
    { match = "ratelimit", scope = "source", delay = "15m", category = "speeding", rate_factor = 0.5 },
  },

  providers = {
    {
      name = "gmail", -- gmail.com and every Google Workspace domain
      mx = { "*.google.com", "*.googlemail.com", "*.smtp.goog" },
      -- Gmail publishes no fixed rates: it throttles by IP and domain
      -- reputation (421 4.7.28) and accepts up to 100 recipients per message.
      limits = {
        connections = 20,
        messages_per_connection = 100,
        recipients_per_message = 100,
        per_minute = 1200,
        burst = 100,
      },
      suspend = {
        -- "unusual rate of unsolicited mail originating from your IP address":
        -- Gmail asks to slow down; an hour lets the IP's rate fall back.
        { match = "4%.7%.28", scope = "source", delay = "1h", category = "speeding", rate_factor = 0.5 },
        { match = "unusual rate of unsolicited", scope = "source", delay = "1h", category = "speeding", rate_factor = 0.5 },
        -- "very low reputation of the sending IP address": keep traffic away
        -- from this IP at Gmail and let the reserve IPs carry it.
        { match = "low reputation of the sending", scope = "source", delay = "2h", category = "badreputation" },
      },
    },
    {
      name = "microsoft", -- outlook.com, hotmail, live, msn and Office 365
      mx = { "*.protection.outlook.com", "*.olc.protection.outlook.com", "*.outlook.com", "*.hotmail.com" },
      -- Microsoft throttles per IP (4.7.500-699, S775) long before it says
      -- why: few connections and short sessions keep it quiet.
      limits = {
        connections = 10,
        messages_per_connection = 30,
        recipients_per_message = 50,
        per_minute = 300,
        burst = 30,
      },
      suspend = {
        -- S3140/S3150: the IP or its network is on Microsoft's block list;
        -- retrying before delisting (sender.office.com) only adds strikes.
        { match = "s31[45]0", scope = "source", delay = "6h", category = "blocked" },
        -- 5.7.606-649 "banned sending IP".
        { match = "5%.7%.6[0-4]%d", scope = "source", delay = "12h", category = "blocked" },
        -- S775 / 4.7.650: "temporarily rate limited due to IP reputation".
        { match = "s775", scope = "source", delay = "1h", category = "speeding", rate_factor = 0.5 },
        -- 4.7.500-699 "server busy, try again later" (S77719 and friends).
        { match = "4%.7%.[56]%d%d", scope = "source", delay = "15m", category = "speeding", rate_factor = 0.5 },
      },
    },
    {
      name = "yahoo", -- yahoo, aol, verizon.net, att.net (Yahoo-hosted)
      mx = { "*.yahoodns.net", "*.yahoo.com", "*.aol.com" },
      -- Yahoo answers volume spikes with TSS04 deferrals: keep sessions
      -- short and the rate even rather than fast.
      limits = {
        connections = 10,
        messages_per_connection = 20,
        recipients_per_message = 25,
        per_minute = 300,
        burst = 20,
      },
      suspend = {
        -- [TSS04] "temporarily deferred due to unexpected volume or user
        -- complaints": back off, then resume gently.
        { match = "tss04", scope = "source", delay = "1h", category = "speeding", rate_factor = 0.5 },
        -- [TS01]-[TS03], [TSS09]: "permanently deferred; retrying will NOT
        -- succeed" for this IP. Only the reserve IPs can help.
        { match = "%[ts0[123]%]", scope = "source", delay = "24h", category = "blocked" },
        { match = "tss09", scope = "source", delay = "24h", category = "blocked" },
      },
    },
    {
      name = "icloud", -- icloud.com, me.com, mac.com
      mx = { "*.mail.icloud.com", "*.icloud.com" },
      -- Apple defers new or bursty senders quickly; low concurrency.
      limits = {
        connections = 5,
        messages_per_connection = 20,
        recipients_per_message = 20,
        per_minute = 150,
        burst = 10,
      },
    },
    {
      name = "libero", -- Italiaonline: libero.it, inwind.it, iol.it, blu.it, giallo.it
      mx = { "*.libero.it", "*.iol.it", "*.inwind.it", "*.italiaonline.it" },
      -- Italian ISPs are strict on concurrent connections from one IP and
      -- answer "too many connections" after two or three.
      limits = {
        connections = 2,
        messages_per_connection = 10,
        recipients_per_message = 10,
        per_minute = 60,
        per_hour = 2000,
        burst = 5,
      },
    },
    {
      name = "virgilio", -- virgilio.it (Italiaonline, separate MX farm)
      mx = { "*.virgilio.it", "*.virgilio.net" },
      -- Same operator and the same strictness as Libero.
      limits = {
        connections = 2,
        messages_per_connection = 10,
        recipients_per_message = 10,
        per_minute = 60,
        per_hour = 2000,
        burst = 5,
      },
    },
    {
      name = "tim", -- TIM consumer mail: alice.it, tim.it, tin.it, virgilio legacy
      mx = { "*.tim.it", "*.alice.it", "*.tin.it", "*.telecomitalia.it" },
      -- TIM limits connections per IP tightly and defers bursts.
      limits = {
        connections = 2,
        messages_per_connection = 10,
        recipients_per_message = 10,
        per_minute = 60,
        per_hour = 1500,
        burst = 5,
      },
    },
    {
      name = "aruba", -- aruba.it mailboxes and the many domains Aruba hosts
      mx = { "*.aruba.it", "*.arubabusiness.it" },
      -- Aruba hosts many small business domains behind one MX farm: a few
      -- connections, short sessions.
      limits = {
        connections = 3,
        messages_per_connection = 20,
        recipients_per_message = 20,
        per_minute = 120,
        burst = 10,
      },
    },
    {
      name = "fastweb",
      mx = { "*.fastwebnet.it", "*.fastweb.it" },
      limits = { connections = 3, messages_per_connection = 20, recipients_per_message = 20, per_minute = 120 },
    },
    {
      name = "tiscali",
      mx = { "*.tiscali.it" },
      limits = { connections = 2, messages_per_connection = 10, recipients_per_message = 10, per_minute = 60 },
    },
    {
      name = "gmx", -- United Internet: gmx.net, gmx.de, gmx.com, web.de
      mx = { "*.gmx.net", "*.gmx.com", "*.gmx.de", "*.web.de" },
      -- United Internet rejects non-conforming mail outright and caps
      -- concurrent connections per IP.
      limits = {
        connections = 5,
        messages_per_connection = 50,
        recipients_per_message = 50,
        per_minute = 200,
        burst = 20,
      },
    },
    {
      name = "orange", -- orange.fr, wanadoo.fr
      mx = { "*.orange.fr", "*.wanadoo.fr" },
      -- Orange allows very few connections per IP ("OFR..._104 too many
      -- connections") and slows down senders that exceed it.
      limits = {
        connections = 2,
        messages_per_connection = 50,
        recipients_per_message = 20,
        per_minute = 100,
        burst = 10,
      },
      suspend = {
        { match = "ofr%d*_104", scope = "source", delay = "10m", category = "toomanyconn" },
        { match = "ofr%d*_102", scope = "source", delay = "1h", category = "badreputation" },
      },
    },
    {
      name = "free", -- free.fr
      mx = { "*.free.fr" },
      limits = { connections = 2, messages_per_connection = 20, recipients_per_message = 20, per_minute = 100 },
    },
    {
      name = "sfr", -- sfr.fr, neuf.fr
      mx = { "*.sfr.fr" },
      limits = { connections = 3, messages_per_connection = 20, recipients_per_message = 20, per_minute = 100 },
    },
    {
      name = "t-online", -- t-online.de: strict, accepts only well-identified senders
      mx = { "*.t-online.de" },
      limits = { connections = 3, messages_per_connection = 20, recipients_per_message = 20, per_minute = 100 },
    },
    {
      name = "yandex",
      mx = { "*.yandex.ru", "*.yandex.net" },
      limits = { connections = 5, messages_per_connection = 50, recipients_per_message = 35, per_minute = 200 },
    },
    {
      name = "mailru", -- mail.ru, inbox.ru, list.ru, bk.ru
      mx = { "*.mail.ru" },
      limits = { connections = 5, messages_per_connection = 50, recipients_per_message = 50, per_minute = 200 },
    },
    {
      name = "proton",
      mx = { "*.protonmail.ch" },
      limits = { connections = 5, messages_per_connection = 50, recipients_per_message = 50, per_minute = 200 },
    },
    {
      name = "zoho",
      mx = { "*.zoho.com", "*.zoho.eu", "*.zohomail.com" },
      limits = { connections = 5, messages_per_connection = 50, recipients_per_message = 50, per_minute = 200 },
    },
    {
      name = "comcast", -- comcast.net: "RL000001 too many sessions" beyond a few
      mx = { "*.comcast.net", "*.xfinity.com" },
      limits = { connections = 3, messages_per_connection = 20, recipients_per_message = 20, per_minute = 100 },
    },
  },
}
