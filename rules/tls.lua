-- Outbound TLS: how the SMTP session of each delivery is protected.
-- Read by scripts/route.lua, which returns the choice as route's tls field.
--
--   "auto"           the default: whatever the recipient domain publishes:
--                    DANE where its MX hosts have DNSSEC-signed TLSA records
--                    (needs --dane-resolver), else its MTA-STS policy, else
--                    STARTTLS when offered, with any certificate
--   "opportunistic"  STARTTLS when offered, any certificate; DANE and
--                    MTA-STS ignored (only for receivers whose published
--                    policy is known to be broken)
--   "required"       TLS with a certificate valid for the MX host (DANE
--                    where published, else the certificate authorities):
--                    otherwise the mail waits
--   "dane"           only MX hosts authenticated by DANE: otherwise waits
--   "mta-sts"        the domain's MTA-STS policy, enforced even in testing
--                    mode: otherwise waits
--
-- A policy never sends in clear what it requires encrypted: the mail is
-- deferred (451 4.7.10 or 4.7.5) and expires with a DSN after the queue's
-- max age. The most specific entry wins: the tenant's, then the
-- provider's (names as in rules/providers.lua), then the class's, then
-- default.

return {
  default = "auto",

  classes = {
    -- Prescriptions and password resets must not travel in clear:
    -- critical = "required",
  },

  providers = {
    -- gmail = "required",
  },

  tenants = {
    -- A clinic whose correspondents all publish DANE:
    -- clinic = "dane",
  },
}
