-- Egress pools: which source IPs each kind of mail leaves from.
-- Read by scripts/route.lua (the IP rotation) and scripts/shape.lua (warm-up).
--
-- Receivers build reputation per IP and per kind of traffic. The default
-- route keeps the same kind of message, from the same sender, to the same
-- provider on the same IP (a stable hash), keeps newsletters away from the
-- IPs that carry transactional and personal mail, and moves traffic to the
-- reserve IPs when an IP's deferral or bounce rate at a provider goes bad.
--
-- pools     Named pools. ips lists {ip=, helo=, weight=}: helo is the EHLO
--           name (it must resolve to ip and back: FCrDNS); weight shares
--           traffic between the IPs of a pool (default 1). A pool with no
--           IPs uses the node's configured sources (core.sources()), so
--           these defaults work on a fresh machine with one IP.
-- reserve   Warm IPs kept for failover: used when the chosen IP is unhealthy
--           at the recipient's provider. Same format as a pool's ips.
-- classes   Pool of each class.
-- tenants   Pool of a tenant, overriding its classes (a dedicated-IP customer).
-- lanes     When a pool has no IPs of its own, the node's sources are dealt
--           round-robin into lanes and each class uses its lane: with two
--           IPs newsletters get one and everything else the other; with
--           three, personal mail gets its own.
-- health    When an IP is unhealthy at a provider: over window, at least
--           min_attempts deliveries and a deferral or bounce rate above
--           the maximum.
-- warmup    IPs still warming up, by IP. start (a UTC date) and daily (the
--           most messages per provider on day 1, 2, ... of the schedule)
--           make the core count what the IP sends to each provider each
--           day, persisted across restarts; once today's cap is reached,
--           scripts/route.lua sends that traffic from the pool's warm IPs
--           (or the reserve) instead, so nothing waits. After the last day
--           the IP is warm; remove the entry. The fields of a limits table
--           (see rules/providers.lua) may be added too: scripts/shape.lua
--           applies the lower of these and the provider's limits.

return {
  pools = {
    transactional = { ips = {} },
    personal = { ips = {} },
    bulk = { ips = {} },
    -- A dedicated pool, for example:
    -- bulk = { ips = {
    --   { ip = "192.0.2.10", helo = "out10.mta.example.net", weight = 2 },
    --   { ip = "192.0.2.11", helo = "out11.mta.example.net" },
    -- } },
  },

  reserve = {
    -- { ip = "198.51.100.20", helo = "spare20.mta.example.net" },
  },

  classes = {
    critical = "transactional",
    transactional = "transactional",
    personal = "personal",
    newsletter = "bulk",
  },

  tenants = {
    -- example = "transactional",
  },

  lanes = { newsletter = 1, transactional = 2, critical = 2, personal = 3 },

  health = {
    window = "5m",
    min_attempts = 50,
    max_deferral_rate = 0.30,
    max_bounce_rate = 0.10,
  },

  warmup = {
    -- A new IP: 50 messages per provider on its first day, doubling to
    -- full volume in two weeks, never more than 2 connections meanwhile.
    -- ["192.0.2.12"] = {
    --   start = "2026-11-20",
    --   daily = { 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400, 204800, 409600 },
    --   connections = 2,
    -- },
  },
}
