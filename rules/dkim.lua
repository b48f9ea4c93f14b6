-- rules/dkim.lua: which keys DKIM-sign outgoing mail (RFC 6376; Ed25519 keys
-- as in RFC 8463). It loads with the rest of the policy, at start and with
-- every reload: a file or key that does not load refuses the whole reload,
-- like a broken script (the running policy and keys stay, the error is
-- logged as file:line), and `corriere rules check` fails on it. `corriere
-- dkim check` loads it the same way and prints the DNS record each key needs.
--
-- Why it matters: Gmail, Yahoo and Microsoft want bulk mail DKIM-signed, and
-- DMARC passes on DKIM only when the signing domain (d=) is the From: domain
-- or a parent of it.
--
-- Which domain signs a message, first match wins:
--   1. a re-enveloped message (its tenant has reenvelope = true, so the
--      envelope sender is the platform's bounce address): the platform domain,
--      so DKIM and SPF both pass for the platform;
--   2. the From: domain's entry in domains, or the entry of a parent domain
--      that says subdomains = true;
--   3. the tenant's entry in tenants;
--   4. nobody: the message leaves unsigned (a choice, not an error).
-- The chosen domain signs once with each of its active keys.
--
-- Fields:
--   headers    header fields signed when present. From is required.
--   oversign   header fields signed once more than they appear: adding a copy
--              later (a second From:, Subject: or List-Unsubscribe: in a
--              replayed message) breaks the signature instead of riding on it.
--   platform   the domain (an entry of domains) that signs re-enveloped mail.
--   domains    signing domain = {
--                keys = {                  -- every key of the domain, signing or not
--                  { selector = "s1",      -- the s= tag; the TXT record is s1._domainkey.<domain>
--                    algorithm = "rsa-sha256",   -- or "ed25519-sha256"
--                    file = "keys/....pem" },    -- private key, relative to rules/ (or absolute)
--                },
--                active = { "s1" },        -- selectors that sign now; may be left out
--                                          -- when there is one key per algorithm
--                subdomains = true,        -- optional: also sign mail From: any subdomain
--                tenants = { "acme" },     -- optional: only these tenants' From: may use it
--              }
--   tenants    tenant = { domain = "..." }: the domains entry that signs the
--              tenant's mail when its From: domain has no key; or a signing
--              domain of the tenant's own: { domain =, keys =, active = }.
--
-- Keys: make them with `corriere dkim keygen --domain D --selector S`
-- (add --algorithm ed25519 for Ed25519). It writes the key file with mode 0600
-- and prints the TXT record to publish. Never put a key in this file: policy is
-- read by everyone who may change it, key files are secrets (the plugin warns
-- about key files that others can read). RSA keys must have 2048 bits or more.
--
-- A changed key file alone is read at the next policy reload: save
-- rules/dkim.lua (or any policy file) to trigger one.
--
-- Rotation: keygen a new selector, publish its record and list its key under
-- keys while active keeps the old selector; after the record's TTL, make the
-- new selector active; a week later remove the old key and its record.
-- `corriere dkim keygen --help` walks through it.
--
-- Both RSA and Ed25519: list one active selector of each. Receivers that do not
-- know Ed25519 ignore that signature and verify the RSA one, which comes first.

return {
  -- What a reader sees, what threads a conversation, what decides how the body
  -- is shown (MIME), and the list and feedback fields that providers act on
  -- (one-click unsubscribe, Gmail's Feedback-ID). Never Received or
  -- Return-Path: relays add those.
  headers = {
    "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
    "In-Reply-To", "References", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "List-Help", "List-Subscribe", "List-Post",
    "List-Owner", "List-Archive", "Feedback-ID",
  },

  -- Many mail clients show the topmost copy of a field while a signature
  -- covers the bottom one, so these cannot be added after signing. Date and
  -- Message-ID are left out: some receivers add them to mail that lacks them.
  oversign = {
    "From", "Sender", "Reply-To", "To", "Cc", "Subject", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe",
    "List-Unsubscribe-Post",
  },

  -- Re-enveloped mail goes out with envelope sender bounces@bounces.corriere-smarthost.it
  -- (see scripts/rewrite.lua), so the platform domain signs it.
  platform = "corriere-smarthost.it",

  domains = {
    -- DEMO keys for the loopback demo (corriere sim): they are public in the
    -- repository. Replace them with your own before sending real mail.
    ["corriere-smarthost.it"] = {
      keys = {
        { selector = "corriere", algorithm = "rsa-sha256", file = "keys/corriere-smarthost.it.corriere.rsa.pem" },
      },
      subdomains = true,
    },

    ["negozio-esempio.it"] = {
      keys = {
        { selector = "corriere", algorithm = "rsa-sha256", file = "keys/negozio-esempio.it.corriere.rsa.pem" },
        { selector = "corriere-ed", algorithm = "ed25519-sha256", file = "keys/negozio-esempio.it.corriere-ed.ed25519.pem" },
      },
      -- Both algorithms sign. During a rotation this lists the selector in use
      -- while the new one waits above for its DNS record to spread.
      active = { "corriere", "corriere-ed" },
      subdomains = true,
    },
  },

  tenants = {
    -- The demo tenant's mail from domains without keys of their own is signed
    -- by the platform, so it still carries a valid signature.
    example = { domain = "corriere-smarthost.it" },
  },
}
