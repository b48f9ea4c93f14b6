-- Hooks for tenant "example" only.
--
-- A file in scripts/tenants/ is named after a tenant and may define any of
-- classify, rewrite, route and on_response. Whatever it does not define
-- falls back to the default script in scripts/ (here: everything except
-- classify). The defaults stay reachable as defaults.<hook>, so an override
-- can adjust the default's answer instead of rewriting it.

-- Example's shop platform puts "Precedence: bulk" on its order
-- confirmations, which makes them look like newsletters. They are
-- transactional: customers wait for them.
function classify(msg)
  local c = defaults.classify(msg)
  local subject = string.lower(msg:subject() or "")
  if c.class == "newsletter" and subject:find("^order confirmation") then
    c.class = "transactional"
    c.priority = 50
  end
  return c
end
