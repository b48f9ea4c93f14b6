-- Bounce classification rules.
--
-- Corriere reads every bounce (a standard DSN, a bounce written in prose, a
-- feedback report, an automatic reply) into one report per recipient: its
-- kind, the Action and Status it declares, the SMTP reply code, and the
-- remote server's words (the "diagnostic"). These rules turn a report into
-- a reason of the Sisimai taxonomy ("userunknown", "mailboxfull",
-- "blocked"...) and decide whether the address is dead ("hard").
--
-- HOW A RULE MATCHES
--   Rules are tried from top to bottom; the first one that matches decides.
--   A rule matches when all of its conditions hold:
--     kind    = report kinds: "dsn", "text" (a prose bounce), "arf" (a
--               feedback report), "autoreply", or "smtp" (a reply read by
--               our own delivery, not a bounce)
--     action  = DSN actions: "failed", "delayed", "delivered"
--     command = the SMTP command the failure answered, when the bounce says
--               it: "connect", "helo", "starttls", "mail", "rcpt", "data",
--               or "none" when it does not say
--     host    = domains of a provider: the recipient's domain or the host
--               that reported the failure (Remote-MTA, or the server a
--               bounce's prose names: "host mx.example.com[...] said") is
--               one of them or under one of them: { "icloud.com", "me.com" }
--     unless  = text fragments that veto the rule
--   and one of its tests succeeds (a rule without tests matches as soon as
--   its conditions hold):
--     status  = enhanced status codes: "5.1.1", or with wildcards "5.7.*",
--               "*.2.2"
--     reply   = SMTP reply codes: 550, or with wildcards "55x", "4xx"
--     text    = fragments of the diagnostic, matched ignoring upper/lower
--               case; a fragment may be a list of pieces that must appear
--               in that order: { "mailbox ", " full" }
--   With all = true, every test given must succeed instead (for example a
--   status AND a text).
--   When no rule matches, the reason is "onhold" (the bounce says something
--   nobody recognises yet) or "undefined" (it says nothing at all).
--
-- WHAT THE DIAGNOSTIC HOLDS
--   For a DSN, the Diagnostic-Code field without its "smtp;" type (other
--   types such as "x-unix;" are kept); for a prose bounce, the lines that
--   explain the recipient's failure, multi-line replies joined into one
--   ("550-5.7.1 a" + "550 5.7.1 b" = "550 5.7.1 a b"). When the bounce
--   names the failed SMTP command elsewhere, " (in reply to RCPT TO
--   command)" is appended. The command condition recognises Postfix's "in
--   reply to X command", Exim's "after RCPT TO", Sendmail's ">>> DATA",
--   qmail's "does not like recipient" and the like.
--
-- HARD OR SOFT
--   hard = true          the address is dead: never mail it again
--   hard = "permanent"   dead only if the failure is permanent (5.x.x, 5xx);
--                        a 4xx says "not now", not "never"
--   (absent)             soft: the next message may well get through
--
-- WRITING RULES
--   * Put precise words before generic codes. Servers answer 5.7.1 or 5.0.0
--     for a dozen different reasons; only the words tell them apart.
--   * A fragment should be specific enough to mean one thing wherever it
--     appears. "user unknown" is fine; "unknown" alone is not.
--   * Fragments are plain text, not patterns: no escaping is needed.
--   * Test a change with `go test -v -run TestCorpus ./core/bounce/`: it
--     prints the agreement with the shared corpus of real bounces and, for
--     every disagreement, the number of the rule that decided it.

-- The recipient's mailbox does not exist, in the short words of an SMTP
-- reply. What they mean depends on when the server said them (see the
-- "userunknown" and "filtered" rules below).
local unknown_user_words = {
  "user unknown", "unknown user", "no such user", "no such mailbox", "no such recipient",
  "no such person", "no such address", "unknown recipient", "recipient unknown",
  "unknown mailbox", "mailbox unknown", "unknown address", "address unknown",
  "invalid recipient", "invalid mailbox", "invalid user", "bad recipient", "bad destination mailbox",
  "recipient not found", "user not found", "mailbox not found", "address not found",
  "user does not exist", "user doesn't exist", "user not exist", "user not known",
  "unknown or illegal user", "illegal user", "this user doesn't have a", "recipient not ok",
  "recipient address rejected: user unknown", "recipient address rejected: unknown user",
  "recipient address rejected: invalid user", "recipient address rejected: userunknown",
  "recipient address rejected: access denied", "recipient address rejected. (in reply to rcpt to command)",
  "not a valid mailbox", "not a valid recipient", "not a valid user", "is not a known user",
  "recipient is not local", "not a local address", "unknown local part", "unknown local-part",
  "address rejected.", "5.1.0 address rejected", "nessun utente", "utilisateur inconnu",
  "destinataire inconnu", "destinataire invalide", "no existe", "unbekannt", "gibt es nicht",
  "address invalid", "invalid address", "can't accept user", "destination server rejected recipients",
  "mailbox not present", "no mailbox found", "mailbox unavaiable", "recipient is not accepted",
  "recipient not exist", "invalid-recipient", "user not active", "the following recipients was undeliverable",
  "not email addresses", "account unavailable", "mailbox unavailable",
  { "user ", " not found" }, { "user (", ") unknown" }, { "non", "existent user" }, { "unknown e", "mail address" },
}

-- The same news in the long words of a mailbox directory or a provider's
-- own bounce: these never come from a content filter.
local directory_words = {
  "recipient does not exist", "mailbox does not exist", "address does not exist", "account does not exist",
  "that you tried to reach does not exist", "does not exist here", "no mailbox here by that name",
  "no account by that name", "no mailbox by that name", "mailbox is unavailable",
  "mailbox not available", "mailbox invalid", "mailbox is inactive", "resolver.adr.recipnotfound",
  "resolver.adr.recipientnotfound", "recipient not found by smtp address lookup", "returned unknown recipient",
  "address couldn't be found", "address could not be found", "email address wasn't found",
  "email address wasn’t found", "entered couldn't be found", "the recipient name is not recognized",
  "not listed in domino directory", "not listed in public name & address book",
  "please check if address is correct", "no valid recipients", "unknown user:", "dd this user doesn't have a",
  "address not present in directory", "destination addresses were unknown", "is not an active address at this host",
  "no mail box available for this user", "there is no one at this address", "this email address is wrong or no longer valid",
  "the user's email name is not found", "user missing home directory", "invalid or unknown virtual user",
  "invalid final delivery userid", "unknown or illegal alias", "badrcptto", "badrecipientto", "not in my validrcptto list",
  "your envelope recipient has been denied", "weil die adresse nicht gefunden wurde",
  "no se encuentra en el directorio de domino", "non répertorié dans l'annuaire domino", "domino ディレクトリには見つかりません",
  "ディレクトリのリストにありません",
  { "user ", " does not exist" }, { "user ", " was not found" }, { "recipient ", " was not found in" },
  { "no ", " in name directory" }, { "rcpt <", " does not exist" }, { "<", "> not found" }, { "mailbox ", " does not exist" }, { "recipient ", " does not exist" },
  { "account ", " does not exist" }, { "recipient address rejected: user ", " does not exist" },
  "that domain or user isn't in my list of allowed rcpthosts", "resolver.adr.recipient notfound",
}

-- merge(a, b) is the list of a's entries followed by b's.
local function merge(a, b)
  local out = {}
  for _, v in ipairs(a) do table.insert(out, v) end
  for _, v in ipairs(b) do table.insert(out, v) end
  return out
end

local user_unknown = merge(unknown_user_words, directory_words)

-- Words of a filter that refused the message for this recipient, as
-- opposed to the recipient not existing.
local filtered_words = {
  "refused due to recipient preferences", "user refuses to receive", "recipient refuses",
  "is not accepting any mail", "only accepting mail from specific", "you have been blocked by the recipient",
  "has restricted sms e-mail", "message rejected due to user rules", "account is protected by",
  "has previously been bounced", "bounced address", "new mail is not currently being accepted for this mailbox",
  "not found recipient account", "user reject", "refuse to receive mail",
}

-- Words that say our envelope sender (MAIL FROM), not the recipient, was
-- refused.
local sender_refused = {
  "sender address rejected", "sender rejected", "sender was rejected", "sender verify failed",
  "sender verification failed", "unroutable sender", "invalid sender", "sender not pre-approved",
  "sender is in my black list", "sender address has been blacklisted", "sender is spammer",
  "domain of sender address", "sender domain is empty", "null sender is not allowed",
  "empty envelope senders not allowed", "bogus mail from", "returned mail not accepted here",
  "no third-party dsns", "batv", "backscatter", "not a registered gateway user",
  "mail from not owned by user", "recipient addresses rejected : access denied",
  "sending this from a different address or alias", "from: domain is invalid",
  "you are sending to/from an address that has been blacklisted", "your email address has been blacklisted",
  "fully qualified email address required", "emetteur invalide", "this server does not accept mail from",
  "unsigned dsn", "has previously been marked as spam", "spam reporting address",
  "delivery not authorized, message refused", "access denied (sender blacklisted)",
  "can't determine purported responsible address", "denied [bouncedeny]", "valid-address-filter",
  "rfc 1035 violation: recursive cname records", "rule imposed mailbox access for",
  "sender domain must exist", "sender email address rejected", "syntax error: empty email address",
  "isn't on the recipient's list of senders to accept mail from", "senderfilterconfig",
  "administrative prohibition", "envelope blocked", "invalid domain, see",
}

-- orange_codes("506", ...) lists the fragments of Orange's and La Poste's
-- refusal codes: "OFR_506", "OFR004_506", "LPN007_506"...
local function orange_codes(...)
  local fragments = {}
  for _, code in ipairs({ ... }) do
    table.insert(fragments, { "ofr", "_" .. code })
    table.insert(fragments, { "lpn", "_" .. code })
  end
  return fragments
end

-- spectrum_codes(from, to, ...) lists the fragments of Charter/Spectrum's
-- refusal codes from "AUP#I-1000" (incoming) or "AUP#O-1000" (outgoing)
-- on, in the steps of ten its documentation uses.
local function spectrum_codes(ranges)
  local fragments = {}
  for _, r in ipairs(ranges) do
    for code = r[1], r[2] or r[1], 10 do
      table.insert(fragments, { "aup#", "-" .. code })
    end
  end
  return fragments
end

-- The domains of the providers whose replies need their own rules: the
-- recipient's domain, or the servers that answer for it.
local apple = { "icloud.com", "me.com", "mac.com", "apple.com" }
local tencent = { "qq.com", "foxmail.com" }
local kddi = { "ezweb.ne.jp", "au.com" }
local docomo = { "docomo.ne.jp" }
local microsoft = { "outlook.com", "onmicrosoft.com", "exchangelabs.com" }
local hotmail = { "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.it", "live.com", "msn.com" }
local yahoo = { "yahoodns.net" }
local aol = { "aol.com", "aim.com" }
local google = { "google.com", "googlemail.com" }
local facebook = { "facebook.com" }

return {
  -----------------------------------------------------------------------
  -- Not failures: what the report is says it all.
  -----------------------------------------------------------------------

  -- A complaint (abuse report, opt-out) from a mailbox provider's feedback
  -- loop. The address exists, but its owner asked us to stop: suppress.
  { category = "feedback", hard = true, kind = { "arf" } },
  -- An out-of-office or other automatic reply: the message arrived.
  { category = "vacation", kind = { "autoreply" } },
  -- A success DSN (NOTIFY=SUCCESS), or a 2xx code.
  { category = "delivered", action = { "delivered" } },
  { category = "delivered", status = { "2.*.*" }, reply = { "2xx" } },

  -----------------------------------------------------------------------
  -- Providers whose replies mean something of their own. These rules
  -- apply only to mail for the provider's domains or answered by its
  -- servers (host), and come first: at that provider, its documentation
  -- says what the words mean better than the generic rules below.
  -----------------------------------------------------------------------

  -- Apple iCloud (support.apple.com/102322). An address iCloud calls
  -- inactive has been closed: it will not come back.
  { category = "userunknown", hard = true, host = apple,
    text = { "inactive email address", "user does not exist", "unknown or illegal alias" } },
  { category = "mailboxfull", host = apple, text = { "over quota" } },
  { category = "notaccept", hard = "permanent", host = apple, text = { "does not accept mail" } },
  { category = "policyviolation", host = apple, text = { "due to local policy" } },
  { category = "authfailure", host = apple, text = { "dmarc policy", "failing both spf and dkim" } },
  { category = "blocked", host = apple, text = { "not accepting connections", "dnsbl-lookup", "spamhaus" } },
  { category = "speeding", host = apple, text = { "excessive volume" } },

  -- Tencent QQ Mail and Foxmail (service.mail.qq.com/detail/122): short
  -- English phrases, each with its help page.
  { category = "authfailure", host = tencent, text = { "spf check failed", "dmarc check failed" } },
  { category = "blocked", host = tencent,
    text = { "suspected bounce attack", "suspected spam ip", "connection denied" } },
  { category = "spamdetected", host = tencent, text = { "spam is embedded", "content denied" } },
  { category = "rejected", host = tencent, text = { "suspected spam", "rejected by recipients" } },
  { category = "mesgtoobig", host = tencent, text = { "message too large" } },
  { category = "syntaxerror", host = tencent, text = { "bad address syntax" } },
  { category = "toomanyconn", host = tencent, text = { "frequency limited" } },
  { category = "suspend", host = tencent, text = { "deactivated mailbox", "mailbox unavailable or access denied" } },
  { category = "userunknown", hard = true, host = tencent, text = { "mailbox not found" } },

  -- KDDI au (ezweb.ne.jp, au.com). "550 <address>: User unknown" is an
  -- unknown address; without the address ("550 : User unknown") it is the
  -- recipient's reception filter refusing the sender (below, for any host).
  -- au's own bounces state the reason in a sentence of their own first
  -- (and mark those of its spam filter "X-SPASIGN: NG"):
  -- "The user(s) account is disabled." (or "temporarily limited"), "...
  -- is temporarily over quota", "Your message was not delivered within".
  { category = "filtered", text = { "x-spasign: ng" } },
  { category = "suspend", text = { "the user(s) account is disabled", "the user(s) account is temporarily limited" } },
  { category = "mailboxfull", text = { "the user(s) account is temporarily over quota" } },
  { category = "expired", host = kddi, text = { "your message was not delivered within" } },
  { category = "userunknown", hard = true, host = kddi, text = { ">: user unknown" } },

  -- NTT docomo. The code says it: 5.1.1 is an unknown address, 5.2.0 the
  -- recipient's reception filter. A bare 5.0.0 after RCPT TO is an unknown
  -- address, after DATA the filter refusing the sender.
  { category = "userunknown", hard = true, host = docomo, status = { "5.1.1" } },
  { category = "filtered", host = docomo, status = { "5.2.0" } },
  { category = "mailboxfull", host = docomo, text = { "too much mail data" } },
  { category = "toomanyconn", host = docomo, text = { "552 too many recipients" } },
  { category = "syntaxerror", host = docomo,
    text = { "503 bad sequence of commands", "504 command parameter not implemented" } },
  { category = "userunknown", hard = true, host = docomo, command = { "rcpt" }, status = { "5.0.0" } },
  { category = "rejected", host = docomo, command = { "data" }, status = { "5.0.0" } },

  -- Verizon Wireless's text-message gateways (vtext.com, vzwpix.com) have
  -- no filter behind "no such user here": the number does not exist.
  { category = "userunknown", hard = true, host = { "vtext.com", "vzwpix.com" },
    text = { "no such user here", "no valid recipients" } },

  -- Exchange Online (learn.microsoft.com, "NDRs in Exchange Online"):
  -- the enhanced code is precise, and the same words mean different
  -- things under different codes.
  { category = "userunknown", hard = true, host = microsoft, all = true,
    status = { "5.4.1" }, text = { "recipient address rejected: access denied" } },
  { category = "suspend", host = microsoft, all = true,
    status = { "5.7.504" }, text = { "recipient address rejected: access denied" } },
  { category = "suspend", host = microsoft,
    text = { "access denied, banned recipient", "mailbox cannot be accessed" } },
  { category = "rejected", host = microsoft, all = true,
    status = { "5.7.501", "5.7.502", "5.7.503" }, text = { "access denied" } },
  { category = "rejected", host = microsoft,
    text = { "sender was not authenticated", "sender not authenticated for group", "sender not in allowed-senders list",
             "access denied, bad outbound sender", "client blocked from sending from unregistered domains" } },
  { category = "speeding", host = microsoft,
    text = { "submission quota exceeded", "reached your daily limit for message recipients",
             "per hour message receive limit", "has exceeded permitted limits within",
             "tenant has exceeded threshold", "traffic not accepted from this ip" } },
  { category = "networkerror", host = microsoft,
    text = { "smtpsend.dns.nonexistentdomain", "routing loop detected", "hop count exceeded" } },
  { category = "expired", host = microsoft, text = { "message expired", "message delayed" } },
  { category = "notaccept", hard = "permanent", host = microsoft,
    text = { "hosted tenant which has no mail-enabled subscriptions", "not accepting network messages" } },
  { category = "securityerror", host = microsoft,
    text = { "starttls is required to send mail", "destination mail server must support tls",
             "cannot achieve exchange server authentication" } },
  { category = "systemerror", host = microsoft,
    text = { "suspiciousremoteservererror", "message failed to be replicated", "server busy. please try again later",
             "system incorrectly configured", "misconfigured forwarding address" } },
  { category = "blocked", host = microsoft,
    text = { "access denied, please try again later", "does not accept email over ipv6", "connection dropped",
             "must have a reverse dns record", "restrictdomainstoipaddresses" } },
  { category = "blocked", host = microsoft, all = true, status = { "5.5.4" }, text = { "invalid domain name" } },
  { category = "userunknown", hard = true, host = microsoft,
    text = { "storedrv.submit; invalid recipient address", "recipient address reserved by rfc 2606",
             "recipient addresses in single label domains not accepted", "invalid x.400 address",
             "remote server returned unknown recipient or mailbox unavailable",
             "requested action not taken: mailbox unavailable" } },
  { category = "contenterror", host = microsoft,
    text = { "too many related errors", "agent generated message depth exceeded", "invalid message content" } },
  { category = "contenterror", host = microsoft, all = true, status = { "5.6.11" }, text = { "invalid characters" } },
  { category = "networkerror", host = microsoft, all = true, status = { "4.4.316" }, text = { "connection refused" } },
  { category = "networkerror", host = microsoft, all = true, status = { "5.4.4" }, text = { "invalid arguments" } },
  { category = "norelaying", host = microsoft, all = true, status = { "5.4.310" }, text = { "does not exist" } },
  { category = "notaccept", hard = "permanent", host = microsoft, text = { "missing or bad storedriver mdb properties" } },
  { category = "rejected", host = microsoft, all = true, status = { "5.7.1" }, text = { "delivery not authorized" } },
  { category = "policyviolation", host = microsoft,
    text = { "delivery not authorized, message refused", "x-dg-ref header is too long", "policy violation detected (as345)" } },
  { category = "rejected", host = microsoft,
    text = { "sender denied", "message must be rfc 5322 section 3.6.2 compliant" } },
  { category = "securityerror", host = microsoft, text = { "client was not authenticated to send anonymous mail" } },
  { category = "spamdetected", host = microsoft, text = { "content filter agent quarantined this message" } },
  { category = "speeding", host = microsoft, text = { "recipient thread limit exceeded" } },
  { category = "syntaxerror", host = microsoft, text = { "unrecognized command", "send hello first" } },
  { category = "systemerror", host = microsoft,
    text = { "helo / ehlo requires domain address", "destination mailbox address ambiguous",
             "mailing list expansion problem", "temporary server error. please try again later", "pfa agent busy",
             "journaling on-premises messages" } },
  { category = "systemfull", host = microsoft, text = { "insufficient system resources" } },

  -- Outlook.com and Hotmail answer "mailbox unavailable" for an address
  -- that does not exist.
  { category = "userunknown", hard = true, host = hotmail, text = { "requested action not taken: mailbox unavailable" } },
  { category = "hostunknown", hard = true, host = hotmail, text = { "because the domain is not reachable" } },

  -- Yahoo's own servers (*.yahoodns.net) defer or refuse everything from a
  -- sending IP that users complain about (TSS04, TSS09): the sender is
  -- refused. Quoted by other servers, the same words are a reputation
  -- verdict (below).
  { category = "rejected", host = yahoo,
    text = { "temporarily deferred due to unexpected volume or user complaints", "will be permanently deferred" } },
  { category = "suspend", host = yahoo, text = { " is no longer valid." } },
  { category = "userunknown", hard = true, host = yahoo, text = { "this user doesn't have a", "mailbox not found" } },

  -- AOL's own bounces: a domain it cannot resolve, or one whose MX answer
  -- makes no sense (a domain that takes no mail).
  { category = "notaccept", hard = "permanent", host = aol, text = { "type=mx: malformed or unexpected name server reply" } },
  { category = "hostunknown", hard = true, host = aol, text = { "host or domain name not found" } },

  -- A local delivery agent on the receiving host (procmail, maildrop,
  -- mail.local, vpopmail, vmailmgr, Dovecot's LDA) refused the message
  -- after the remote server took it: its own words say why, and when they
  -- say nothing known, the mailer failed ("mailererror"). A DSN may quote
  -- procmail's command line before or after its words: both orders.
  { category = "mailboxfull", command = { "data", "none" },
    text = { { "procmail", "quota exceeded while writing" }, { "procmail", "user over quota" },
             { "quota exceeded while writing", "procmail" }, { "user over quota", "procmail" },
             { "maildrop: ", "maildir over quota" }, { "mail.local: ", "quota exceeded" },
             { "mail.local: ", "disc quota exceeded" }, { "vdelivermail: ", "over quota" },
             { "vdeliver: ", "system quota violation" }, { "was automatically rejected:", "quota exceeded" },
             { "was automatically rejected:", "not enough disk space" } } },
  { category = "systemfull", command = { "data", "none" },
    text = { { "procmail", "no space left to finish writing" }, { "no space left to finish writing", "procmail" } } },
  { category = "systemerror", command = { "data", "none" },
    text = { { "procmail", "service unavailable" }, { "service unavailable", "procmail" },
             { "mail.local: ", "temporary file write error" } } },
  { category = "filtered", command = { "data", "none" },
    text = { { "vdelivermail: ", "user does not exist, but will deliver to" } } },
  { category = "suspend", command = { "data", "none" }, text = { { "vdelivermail: ", "account is locked" } } },
  { category = "userunknown", hard = true, command = { "data", "none" },
    text = { { "maildrop: ", "cannot find system user" }, { "maildrop: ", "invalid user specified" },
             { "mail.local: ", "unknown user" }, { "mail.local: ", "user unknown" },
             { "mail.local: ", "invalid mailbox path" }, { "mail.local: ", "user missing home directory" },
             { "vdelivermail: ", "no mailbox here by that name" }, { "vdeliver: ", "invalid or unknown" },
             { "vdeliver: ", "does not refer to a virtual user" },
             { "was automatically rejected:", "mailbox doesn't exist" } } },
  { category = "mailererror", command = { "data", "none" },
    text = { "procmail: ", "/procmail ", "maildrop: ", "mail.local: ", "vdelivermail: ", "vdeliver: " } },

  -- Google's servers (support.google.com/a/answer/3726730): the words of
  -- its reply table, with the code where the same words mean two things.
  { category = "userunknown", hard = true, host = google,
    text = { "we weren't able to find the recipient domain" } },
  { category = "userunknown", hard = true, host = google, all = true,
    status = { "5.1.3" }, text = { "is not a valid rfc 5321 address" } },
  { category = "notcompliantrfc", host = google, text = { "is not a valid rfc 5321 address" } },
  { category = "mesgtoobig", host = google, all = true,
    status = { "5.3.4" }, text = { "google's message size limit" } },
  { category = "exceedlimit", host = google,
    text = { "google's message size limit", "header size limit", "google's header name limit",
             "per individual header size", "limit attachments" } },
  { category = "rejected", host = google, text = { "unauthenticated email is not accepted", "mail sending denied" } },
  { category = "authfailure", host = google,
    text = { "senders to authenticate with spf", "senders to authenticate with dkim", "senders to authenticate their email" } },
  { category = "blocked", host = google,
    text = { "helo/ehlo argument", "try again later, closing connection" } },
  { category = "failedstarttls", host = google, text = { "senders to use tls/ssl for smtp", "starttls may not be repeated" } },
  { category = "networkerror", host = google, text = { "message exceeded 50 hops" } },
  { category = "norelaying", host = google,
    text = { "invalid credentials for relay", "is not authorized to send email directly to our servers" } },
  { category = "policyviolation", host = google,
    text = { "sending messages with the same message-id", "has a policy that prohibited" } },
  { category = "requireptr", host = google, text = { "does not match the ip address of the hostname" } },
  { category = "securityerror", host = google,
    text = { "application-specific password required", "please log in with your web browser",
             "please log in through your web browser", "too many login attempts", "username and password not accepted",
             "no identity changes permitted", "cannot decode response" } },
  { category = "speeding", host = google,
    text = { "daily sending quota exceeded", "smtp relay limit exceeded", "smtp relay sending limit exceeded" } },
  { category = "syntaxerror", host = google,
    text = { "bad sequence of commands", "ehlo/helo first", "mail first", "rcpt first", "no data after bdat",
             "optional argument not permitted", "too many unauthenticated commands", "unrecognized command",
             "unimplemented command", "unrecognized authentication type", "xoauth is no longer supported",
             "smtp protocol violation" } },
  { category = "systemerror", host = google,
    text = { "temporary system problem", "server busy", "temporarily rejected this message", "temporarily rejected message",
             "domain policy size per transaction exceeded", "multiple destination domains per transaction" } },
  { category = "expired", host = google, text = { "connection expired" } },

  -- Charter / Spectrum: "AUP#I-nnnn" (mail to Spectrum) or "AUP#O-nnnn"
  -- (mail from Spectrum users); the number says why
  -- (spectrumbusiness.net, "understanding email error codes").
  { category = "blocked", text = spectrum_codes({ { 1000 }, { 1200, 1250 } }) },
  { category = "rejected", text = spectrum_codes({ { 1010, 1080 }, { 1500 }, { 1520 } }) },
  { category = "systemerror", text = spectrum_codes({ { 1090 } }) },
  { category = "requireptr", text = spectrum_codes({ { 1100, 1150 } }) },
  { category = "policyviolation", text = spectrum_codes({ { 1160, 1190 }, { 1560 } }) },
  { category = "networkerror", text = spectrum_codes({ { 1260 } }) },
  { category = "toomanyconn", text = spectrum_codes({ { 1300, 1340 } }) },
  { category = "speeding", text = spectrum_codes({ { 1350, 1490 }, { 1540, 1550 }, { 1580 } }) },
  { category = "mesgtoobig", text = spectrum_codes({ { 1530 } }) },

  -----------------------------------------------------------------------
  -- Mailbox providers whose own words or codes say more than the generic
  -- rules below would guess. They come first because they are exact.
  -----------------------------------------------------------------------

  -- Gmail / Google Workspace (support.google.com/a/answer/3726730).
  { category = "authfailure",
    text = { "senders to authenticate with either spf or dkim", "has an spf record with a hard fail policy",
             "fails to pass spf checks", "is not accepted due to domain's dmarc policy",
             "the spf record of the sending domain", "aligned with either the authenticated spf or dkim",
             "to add a dmarc record to" } },
  { category = "badreputation",
    text = { "very low reputation of the sending ip", "very low reputation of the sending domain" } },
  { category = "blocked",
    text = { "an unusual rate of unsolicited mail", "an unusual rate of mail", "ip not in whitelist for rcpt domain" } },
  { category = "notcompliantrfc",
    text = { "missing a valid address in the from: header", "missing a valid message-id: header",
             "unicode character in a disallowed header", "encoded-word syntax is not permitted",
             "mail message is malformed" } },
  { category = "policyviolation",
    text = { "illegal attachment on your message", "content presents a potential",
             "has a policy that prohibited the mail that you sent" } },
  { category = "spamdetected",
    text = { "due to the nature of the content or the links within", "likely unsolicited mail" } },
  { category = "speeding",
    text = { "is receiving mail too quickly", "receiving mail at a rate that prevents additional messages",
             "daily user sending limit exceeded", "this mail has been rate limited" } },
  { category = "suspend",
    text = { "account that you tried to reach is disabled", "account that you tried to reach is inactive" } },
  { category = "mailboxfull",
    text = { "inbox is out of storage space", "email account that you tried to reach is over quota" } },
  { category = "toomanyconn",
    text = { "your message has too many recipients", "too many recipients for this sender" } },

  -- Microsoft (Outlook.com, Exchange Online).
  { category = "blocked",
    text = { "access denied, banned sending ip", "access denied, banned sender", "using customer block list",
             "access denied, bad helo", "access denied, rejected by recipient", "on our block list (s3150)" } },
  { category = "badreputation", text = { "temporarily rate limited due to ip reputation" } },
  { category = "authfailure", text = { "does not pass dmarc verification", "must pass either spf or dkim validation" } },

  -- Yahoo and AOL (senders.yahooinc.com/smtp-error-codes). TSS04/TSS09
  -- quoted without Yahoo's host name: a verdict on the sending IP's
  -- reputation.
  { category = "badreputation", text = { "temporarily deferred due to unexpected volume or user complaints" } },
  { category = "rejected", text = { " will be permanently deferred", "due to unresolvable rfc.5321" } },
  { category = "authfailure", text = { "requires all senders to authenticate with either spf or dkim" } },
  { category = "blocked", text = { "because the ip is in spamhaus's list", "not accepted from ip addresses on spamhaus" } },
  { category = "notcompliantrfc", text = { "headers are not rfc compliant" } },
  { category = "toomanyconn", text = { "max message per connection reached" } },
  { category = "policyviolation", text = { "not accepted for policy reasons" } },
  { category = "suspend", text = { "this mailbox is disabled (554.30)" } },

  -- Orange and La Poste (France) end each refusal with a code such as
  -- OFR_506 or LPN007_426; the number after the underscore says why.
  { category = "blocked", text = orange_codes("101", "102", "103", "510", "999") },
  { category = "toomanyconn", text = orange_codes("104") },
  { category = "securityerror", text = orange_codes("305", "402") },
  { category = "authfailure", text = orange_codes("401", "517") },
  { category = "rejected", text = orange_codes("403", "405", "415", "421") },
  { category = "userunknown", hard = true, text = orange_codes("416") },
  { category = "mailboxfull", text = orange_codes("417") },
  { category = "suspend", text = orange_codes("420", "426") },
  { category = "systemerror", text = orange_codes("505") },
  { category = "spamdetected", text = orange_codes("506") },
  { category = "mesgtoobig", text = orange_codes("514") },
  { category = "policyviolation", text = orange_codes("630") },

  -- Cox answers with an "AUP#" code.
  { category = "blocked", text = { "aup#cxbl", "aup#cdrbl", "aup#ipbl" } },
  { category = "requireptr", text = { "aup#cxdns" } },
  { category = "authfailure", text = { "aup#cxsndr" } },
  { category = "rejected", text = { "aup#cxsmtp" } },
  { category = "toomanyconn", text = { "aup#cxcnct", "aup#cxmxrt" } },
  { category = "spamdetected", text = { "aup#urlbl" } },
  { category = "securityerror", text = { "aup#cxthrt", "aup#cxmj" } },

  -- Mimecast (its SMTP error code list).
  { category = "policyviolation",
    text = { "host network not allowed", "host network, not allowed", "anti-spoofing policy",
             "content examination policy" } },
  { category = "virusdetected", text = { "email rejected due to security policies" } },
  { category = "authfailure",
    text = { "spf sender invalid - envelope rejected", "dkim sender invalid - envelope rejected",
             "dmarc sender invalid - envelope rejected" } },
  { category = "rejected",
    text = { "administrative prohibition envelope blocked", "envelope blocked - user", "block policy for envelope from",
             "block policy for header from" } },

  -- NTT docomo answers "550 Unknown user" after DATA when the recipient's
  -- reception filter refuses the sender: the address exists.
  { category = "rejected", command = { "data" }, text = { { "550 unknown user ", "docomo" } } },

  -- amavisd-new, the content filter, says what it found after the
  -- message's id: "id=12345-01 - INFECTED: ...", "- BAD HEADER: ...".
  { category = "virusdetected", text = { { "id=", " - infected" } } },
  { category = "contenterror", text = { { "id=", " - bad header" } } },
  { category = "exceedlimit", text = { { "id=", " - message size exceeds recipient" } } },
  { category = "spamdetected", text = { { "id=", " - spam" } } },

  -- PowerMTA adds its own verdict to each recipient of its DSNs
  -- (X-PowerMTA-BounceCategory). Where it names the content or the
  -- mailbox's quota it is final; where it names the address or the
  -- network, the reply's words decide first (see the end of the file).
  { category = "policyviolation", text = { "x-powermta-bouncecategory: policy-related" } },
  { category = "mailboxfull", text = { "x-powermta-bouncecategory: quota-issues" } },
  { category = "spamdetected", text = { "x-powermta-bouncecategory: spam-related" } },

  -- GoDaddy (secureserver.net) names each refusal "IBnnn".
  { category = "securityerror", text = { " ib401 " } },
  { category = "notcompliantrfc", text = { " ib501 ", " ib502 " } },
  { category = "rejected", text = { " ib506 " } },
  { category = "authfailure", text = { " ib508 " } },
  { category = "requireptr", text = { " ib108 " } },
  { category = "spamdetected", text = { " ib212 " } },
  { category = "virusdetected", text = { " ib705 " } },
  { category = "toomanyconn", text = { " ib605 ", " ib007 " } },
  { category = "speeding", text = { " ib101 ", " ib504 ", " ib510 ", " ib607 " } },
  { category = "badreputation", text = { " ib103 " } },
  { category = "blocked", text = { " ib104 ", " ib105 ", " ib106 ", " ib110 ", " ib111 ", " ib112 ", " ib113 " } },

  -- Facebook's codes: "POL-P1" (policy), "RCP-P1" (recipient), ...; short
  -- enough to mean something else elsewhere.
  { category = "authfailure", host = facebook, text = { "pol-p7" } },
  { category = "blocked", host = facebook, text = { "pol-p1", "pol-p2", "pol-p3", "pol-p4", "pol-t1", "pol-t2", "pol-t3" } },
  { category = "spamdetected", host = facebook, text = { "pol-p6" } },
  { category = "contenterror", host = facebook, text = { "msg-p2" } },
  { category = "mesgtoobig", host = facebook, text = { "msg-p1", "int-p2" } },
  { category = "notcompliantrfc", host = facebook, text = { "msg-p3" } },
  { category = "rejected", host = facebook, text = { "dns-p1", "dns-p2", "dns-t1" } },
  { category = "requireptr", host = facebook, text = { "dns-p3", "dns-t2" } },
  { category = "filtered", host = facebook, text = { "rcp-p2", "rcp-p3" } },
  { category = "suspend", host = facebook, text = { "rcp-t4" } },
  { category = "systemerror", host = facebook, text = { "rcp-t1" } },
  { category = "toomanyconn", host = facebook, text = { "con-t1", "con-t2", "con-t3", "con-t4", "msg-t1" } },
  { category = "userunknown", hard = true, host = facebook, text = { "rcp-p1", "int-p1", "int-p3" } },

  -- Exchange Server and Office 365 name the failure in their code
  -- ("RESOLVER.ADR.RecipNotFound"); Exchange 2003 puts a hexadecimal code
  -- in parentheses after "MSEXCH:IMS".
  { category = "userunknown", hard = true,
    text = { "resolver.adr.recipnotfound", "resolver.adr.recipientnotfound", "resolver.adr.exrecipnotfound",
             "(000c05a6)" } },
  { category = "hostunknown", hard = true, text = { "smtpsend.dns.nonexistentdomain" } },
  { category = "networkerror", text = { "smtpsend.dns.mxloopback", "(00120270)" } },
  { category = "toomanyconn", text = { "resolver.adr.reciplimit" } },
  { category = "systemerror",
    text = { "resolver.adr.badprimary", "resolver.adr.invalidinsmtp", "resolver.adr.ambiguous", "(00010256)",
             "(000d06b5)" } },
  { category = "securityerror", text = { "resolver.rst.authrequired", "(000b0981)" } },
  { category = "rejected", text = { "resolver.rst.notauthorized" } },
  { category = "exceedlimit", text = { "resolver.rst.recipsizelimit" } },
  { category = "expired", text = { "queue.expired" } },
  { category = "filtered", text = { "(000c0595)" } },
  { category = "contenterror", text = { "(00050311)", "(000502cc)" } },

  -- Apple iCloud, quoted by other servers.
  { category = "authfailure", text = { "blocked for failing both spf and dkim" } },
  { category = "blocked",
    text = { "rejected due to having a domain present in the spamhaus", "rejected due to listing in spamhaus" } },
  { category = "speeding", text = { "deferred due to excessive volume" } },

  -- Zoho greylists with a permanent-looking text; MessageLabs (Symantec)
  -- answers "542 <address> Rejected" for unknown users.
  { category = "blocked", text = { "greylisted, try again after some time" } },
  { category = "userunknown", hard = true, all = true, reply = { 542 }, text = { "rejected" } },

  -- OpenSMTPD's own failure texts.
  { category = "hostunknown", hard = true, text = { "invalid domain name" },
    unless = { "my name was rejected", "helo", "ehlo" } },
  { category = "networkerror", unless = { "too many received" },
    text = { "loop detected", "address family mismatch on destination mxs", "all routes to destination blocked",
             "bad dns lookup error code", "could not retrieve source address", "no valid route to remote mx",
             "no valid route to destination", "temporary failure in mx lookup", "network error on destination mxs" } },
  { category = "notaccept", hard = "permanent",
    text = { "destination seem to reject all mails", "no mx found for domain", "no mx found for destination" } },
  { category = "securityerror", text = { "could not retrieve credentials" } },

  -- qmail, and the LDAP patch many qmail installations run.
  { category = "systemfull", text = { "mailbox unavailable (not enough free space)" } },
  { category = "suspend", text = { "mailaddress is administrativ" } },
  { category = "exceedlimit", text = { "exeeded the maximum size the user accepts" } },
  { category = "systemerror",
    text = { "automatic homedir creator crashed", "illegal value in ldap attribute",
             "ldap attribute is not given but mandatory", "timeout while performing search on ldap server",
             "too many results returned but needs to be unique", "while executing qmail-forward",
             "error in automatic homedir creation", "temporary failure in ldap lookup",
             "unable to login into ldap server", "bad interpreter: no such file or directory" } },
  { category = "hostunknown", hard = true, text = { "sorry, i couldn't find any host " } },
  { category = "networkerror", text = { "although i'm listed as a best-preference mx or a for that host" } },
  { category = "mesgtoobig", text = { "exceeds my databytes limit" } },

  -- Courier's own failure texts.
  { category = "systemerror", text = { "domain's dns violates rfc 1035" } },
  { category = "networkerror", text = { "dns lookup failed." } },

  -- Gmail and Google Workspace report DNS failures of the recipient's
  -- domain in words of their own.
  { category = "networkerror", text = { "had no relevant answers" } },
  { category = "expired", text = { "dns error: could not contact dns servers" } },
  { category = "hostunknown", hard = true,
    text = { "dns error: domain name not found", "dns server returned answer with no data" } },

  -- au's (KDDI) prose bounces.
  { category = "hostunknown", hard = true, text = { "as the remote domain doesnt exist" } },
  { category = "norelaying", text = { "due to the following smtp relay error" } },

  -- Exim's own failure texts.
  { category = "hostunknown", hard = true,
    text = { "all host address lookups failed permanently", "all relevant mx records point to non-existent hosts" } },
  { category = "notaccept", hard = "permanent",
    text = { "an mx or srv record indicated no smtp service", "no host found for existing smtp connection" } },
  { category = "syntaxerror",
    text = { "angle-brackets nested too deep", "expected word or \"<\"", "domain missing in source-routed address" } },
  { category = "systemerror",
    text = { "delivery to file forbidden", "delivery to pipe forbidden", "local delivery failed", "lmtp error after " } },
  { category = "contenterror", text = { "too many \"received\" headers" } },
  { category = "mailboxfull", text = { "error: quota exceed" } },

  -- Lotus Domino.
  { category = "filtered", text = { "cannot route mail to user" } },
  { category = "systemerror", text = { "several matches found in domino directory" } },

  -- Google Groups refuses posts from non-members; its bounce speaks the
  -- reader's language but is always signed "Google Groups".
  { category = "rejected", text = { "google groups", "the group you tried to contact" } },

  -----------------------------------------------------------------------
  -- The recipient's mailbox: full, too big a message, disabled, moved.
  -----------------------------------------------------------------------

  -- Quota: the owner can make room, so this is soft however it is worded.
  -- SES's sending quota and RFC 5321's "exceeded storage allocation" (the
  -- server's, without a mailbox status) are not the mailbox's.
  { category = "mailboxfull", status = { "4.2.2", "5.2.2" } },
  { category = "toomanyconn", text = { "throttling failure" } },
  { category = "systemfull", text = { "exceeded storage allocation" } },
  { category = "mailboxfull",
    text = { "mailbox full", "mailbox is full", "mailbox quota", "mailbox size limit", "mailfolder is full",
             "quota exceeded", "over quota", "exceeds allowed size", "full mailbox", "diskspace quota",
             "does not have enough space", "not enough disk space", "not sufficient disk space",
             "over the allowed quota", "over the quota", "mail file size exceeds the maximum size allowed",
             "not enough storage", "no space left", "disk quota", "storage quota", "out of storage space",
             "user's space has been used up", "too much mail data", "user has too many messages",
             "boite du destinataire pleine", "has exceeded quota", "quota violation", "would exceed maximum allowed storage",
             "exceeding receiving limits", { "mailbox ", "full" }, { "account is ", " quota" },
             { "quota ", "exceeded" }, { "mailbox ", "exceeded", " limit" } } },

  -- A local delivery program (procmail, a pipe) failed on the receiving
  -- host: "x-unix;" is how DSNs say the error is not an SMTP reply.
  { category = "mailererror", text = { "x-unix;" } },

  -- Size: the message, not the address, is the problem. A per-recipient
  -- limit (5.2.3) is "exceedlimit"; a system-wide one "mesgtoobig".
  { category = "mesgtoobig", status = { "5.3.4", "4.3.4", "5.7.16", "4.7.16" } },
  { category = "exceedlimit", status = { "4.2.3", "5.2.3" } },
  { category = "mesgtoobig",
    text = { "message too big", "message file too big", "message size exceeds", "size limit exceeded",
             "max message size exceeded", "exceeded maximum inbound message size",
             "exceeded the maximum incoming message size", "message length exceeds administrative limit",
             "line limit exceeded", "mail size limit exceeded", "taille limite du message" } },
  { category = "exceedlimit",
    text = { "message header size exceeds limit", "message too large" } },

  -- The account exists but is disabled or locked: it may come back.
  { category = "suspend",
    status = { "5.7.13" },
    reply = { 525 },
    text = { "is currently suspended", "has been suspended", "account suspended", "user suspended",
             "mailbox currently suspended", "mailbox disabled", "mailbox is disabled", "mailbox is frozen",
             "account has been disabled", "account is disabled", "account disabled", "disabled recipient",
             "inactive account", "account is inactive", "account that you tried to reach is inactive",
             "account that you tried to reach is disabled", "temporarily inactive", "temporary locked",
             "temporarily locked", "is a deactivated mailbox", "user is terminated", "account is locked",
             "recipient account is blocked", "compte du destinataire est bloque", "archived recipient",
             "boite du destinataire archivee", "invalid/inactive user", "recipient suspend the service",
             "user or domain is disabled", "mailbox unavailable or access denied",
             "this address no longer accepts mail", "account has been temporarily suspended", "disabled or discontinued" } },

  -- The mailbox is gone and the server says so (sometimes with a new
  -- address): dead.
  { category = "hasmoved", hard = true,
    status = { "5.1.6", "4.1.6", "5.7.17", "5.7.18" },
    text = { " has been replaced by ", "recipient no longer on server", "mailbox has moved" } },

  -- The recipient's own filter refused us (Facebook, AOL, carriers).
  { category = "filtered", text = filtered_words },

  -- The server is not the recipient's: our routing or their MX is wrong.
  { category = "norelaying",
    command = { "mail", "rcpt", "data", "none" },
    text = { "relay access denied", "relaying denied", "relay denied", "relay not permitted", "insecure mail relay",
             "relaying mail to ", "unable to relay", "no relaying", "as a relay", "not permitted to relay",
             "relay not allowed", "not configured to relay", "not allowed to relay", "not an open relay",
             "not a gateway", "not local host", "we don't handle mail for",
             "that domain isn't in my list of allowed rcpthost", "specified domain is not allowed",
             "email address is not verified", "requires authentication when attempting to send to a non-local" } },

  -- SPF, DKIM, DMARC: our authentication, not the recipient.
  { category = "authfailure",
    status = { "5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.26", "5.7.29", "4.7.24", "4.7.26" },
    text = { "dmarc policy", "spf check: fail", "sender policy framework", "bad spf records",
             "spf validation", "does not have authentication information", "fails to pass authentication",
             "unauthenticated email", "authentication requirements defined for the sender",
             "doesn't meet the required authentication level", "per it's spf record", "per its spf record",
             "spf.pobox.com", "inspect your spf settings", "sender is unauthenticated",
             "gmail requires all senders to authenticate", "5.7.509 access denied, sending domain" } },

  -- The domain says it takes no mail at all (null MX, RFC 7505).
  { category = "notaccept", hard = "permanent",
    status = { "5.1.10" },
    unless = user_unknown },
  { category = "notaccept", hard = "permanent",
    unless = { "does not accept mail from" },
    text = { "does not accept mail", "doesn't receive email", "name server: .: host not found", "no mx record found", "null mx", "nullmx",
             "couldn't find a mail exchanger", "could not find a mail exchanger", "mail receiving disabled" } },

  -- Gmail's own bounces end the remote server's reply with "(state N)",
  -- the step its client had reached. A precise status code said it all
  -- above; these decide for the generic ones.
  { category = "failedstarttls", text = { "(state 6)", "(state 9)" } },
  { category = "systemerror", text = { "(state 8)" } },
  { category = "norelaying", text = { "(state 12)" } },
  { category = "blocked", text = { "(state 13)" } },
  { category = "userunknown", hard = true, text = { "(state 14)" } },
  { category = "filtered", text = { "(state 15)", "(state 17)", "(state 18)" } },

  -----------------------------------------------------------------------
  -- The recipient does not exist. Who says it matters: an answer to RCPT
  -- TO is the mailbox directory talking; the same words after DATA come
  -- from a content filter that pretends the address is unknown
  -- ("filtered").
  -----------------------------------------------------------------------

  -- The status says "bad mailbox", and the words do not say something else.
  { category = "userunknown", hard = true,
    status = { "5.1.1", "5.1.0", "5.1.3", "4.1.1" },
    command = { "rcpt", "data", "none", "connect", "helo", "starttls" },
    unless = { "mailbox full", "mailbox is full", "over quota", "quota exceeded", "relay access denied",
               "relaying denied", "not allowed to relay", "sender address rejected", "sender rejected",
               "sender verify failed", "blocked using", "blacklisted", "has been replaced by", "spamhaus",
               "too many recipients", "host does not accept mail", "is not allowed to send", "client host rejected",
               "helo command rejected", "dnsbl", "blocked - see", "null mx", "domain does not accept mail" } },
  -- The server refused the address at RCPT TO.
  { category = "userunknown", hard = true, command = { "rcpt" }, text = user_unknown },
  -- Refused after the message was sent: a filter, not the directory.
  { category = "filtered", command = { "data" }, text = user_unknown },
  -- 5.2.x is "mailbox status": a mailbox that exists but refuses.
  { category = "filtered", all = true, status = { "5.2.0", "5.2.1", "5.2.4", "4.2.4", "5.1.4" }, text = user_unknown },
  -- au (ezweb.ne.jp) answers "550 : User unknown", without the address,
  -- when its spam filter refuses the sender; an unknown user gets
  -- "550 <address>: User unknown".
  { category = "filtered", text = { "550 : user unknown", ": : user unknown" } },
  -- Nothing says when. A directory's long words are still the directory;
  -- the short "user unknown" comes as often from a filter, which is
  -- soft: a later message may get through.
  { category = "userunknown", hard = true, text = directory_words,
    unless = { "sender address", "sender domain", "relay" } },
  { category = "filtered", text = unknown_user_words,
    unless = { "sender address", "sender domain", "relay" } },

  -----------------------------------------------------------------------
  -- Our sending host or message is refused.
  -----------------------------------------------------------------------

  -- Refused at HELO: the sending host itself, whatever the words.
  { category = "blocked", command = { "helo" } },

  -- Reverse DNS (PTR) of the sending IP missing or not matching.
  { category = "requireptr",
    status = { "5.7.25", "4.7.25" },
    text = { "ptr record", "dns ptr", "reverse dns", "sender ip reverse lookup", "cannot find your hostname",
             "cannot resolve your address", "ip name lookup failed", "unresolvable relay host name",
             "generic dns ptr", "unverifyable sending ip", "unverifiable sending ip", "mismatches client ip",
             "does not have a ptr", "connections not accepted from servers without a valid sender domain",
             "invalid rdns", "forward dns entry does not point to the sending ip",
             { "dns lookup failure: ", " try again later" } } },

  -- The message breaks RFC 5322 (duplicate headers, several From...).
  { category = "notcompliantrfc",
    text = { "not rfc 5322 compliant", "rfcmessagenoncompliant", "duplicate header",
             "multiple addresses in from", { " multiple ", " header" } } },

  -- The sending IP's (or domain's) reputation.
  { category = "badreputation",
    text = { "poor email reputation", "poor reputation", "very low reputation", "due to ip reputation",
             "ip/domain reputation", "none/bad reputation", "reputation score" } },

  -- A virus scanner refused the content (it may say spam as well).
  { category = "virusdetected", text = { "prohibited virus", "virus or spam content" } },

  -- A spam filter refused the content.
  { category = "spamdetected",
    status = { "5.7.28" },
    text = { "detected as spam", "classified as spam", "identified as spam", "scored as spam",
             "considered spam", "considered as spam", "looks like spam", "appears to be spam",
             "rejected as spam", "probably spam", "probable spam", "spam detected", "spam message",
             "spam content", "spam-like", "spam classification", "spam filter", "spam score",
             "spam blocked", "spam rejected", "spam not accepted", "spam refused", "spam rejection",
             "spamassassin", "spambouncer", "- spam", "spam email", "contains spam", "be spam",
             "unsolicited", "surbl", "message content rejected", "content filter rejection", "mail content denied",
             "rejecting banned content", "rejecting mail content", "blacklisted url", "uribl",
             "bulk email", "bulk mail", "reject bulk", "classification as bulk", "recurrent pattern detection",
             "high probability of spam", "may consider spam", "antispam", "anti-spam",
             "message filtered. please see", "message filtered. refer to", "too many spam complaints",
             "ube, id=", "554 5.7.0 reject, id=", "spam list", "sender domain listed at", "seems to be a spam", "spamprofiler",
             "unacceptable content", "possible spam", "email is spam", "as spam and has prevented delivery",
             "spam check", "spamming not allowed", "looked like spam", "too much spam", "accept spam",
             "similar to spam", "triggered a spam block", "blocked by our filter", "message rejected for policy reasons",
             { "mail score (", " over " }, { "this message scored ", " points" }, { "spam ", " exceeded" } } },

  -- Headers or MIME structure the server cannot take.
  { category = "contenterror",
    status = { "5.6.*", "4.6.*" },
    text = { "improper use of 8-bit data", "headers too large", "header size exceeds maximum",
             "invalid mime", "mime complexity", "improperly-formatted binary content",
             "unnecessary base64 encoding", "too many received: headers",
             "message header size, or recipient list, exceeds policy limit" } },

  -- Our envelope sender (MAIL FROM) is refused.
  { category = "rejected", status = { "5.1.7", "5.1.8", "4.1.7", "4.1.8" } },
  { category = "rejected", command = { "mail" },
    text = { "access denied", "not allowed", "address rejected", "does not exist", "domain must exist" } },
  { category = "rejected", text = sender_refused },
  -- Mailing lists that only take posts from members.
  { category = "rejected",
    text = { "you are not allowed to post", "not a member of this mailing list", "are not member" } },

  -- Gmail's transient DNS failures: it will retry, so not "hostunknown".
  { category = "networkerror", all = true, status = { "4.*.*" }, text = { "dns error" } },
  -- DNS answers that failed, not a domain that does not exist.
  { category = "networkerror", text = { "host not found, try again", "unrouteable mail domain" } },
  -- Our HELO name refused: the words may say "host not found", but of the
  -- sending host.
  { category = "blocked", text = { "helo command rejected:" } },

  -- The recipient's domain does not exist (no MX, no A): dead.
  { category = "hostunknown", hard = true,
    status = { "5.1.2", "5.4.4" },
    unless = { "name service error", "malformed", "timed out", "try again", "lookup failure" } },
  { category = "hostunknown", hard = true,
    text = { "host unknown", "unknown host", "host or domain name not found", "domain does not exist",
             "no such domain", "domain must exist", "unrouteable mail domain", "unroutable address",
             "unrouteable address", "name or service not known", "domain name not found", "nxdomain",
             "domain is not reachable", "illegal host/domain", "host not found", "dns lookup failure",
             "mail domain mentioned in email address is unknown", "recipient domain must exist",
             "host unreachable", "unknown domain name", "the account or domain may not exist",
             { "553 ", " does not exist" } } },

  -- Too fast or too many: slow down and retry.
  { category = "speeding",
    text = { "please try again slower", "receiving mail at a rate", "temporarily rate limited",
             "too many recipients this hour", "sent to too many recipients" } },
  { category = "toomanyconn",
    status = { "5.5.3", "4.3.2" },
    text = { "too many connections", "connection rate limit", "too many concurrent", "too many smtp sessions",
             "too many recipients", "too many errors from your ip", "maximum connection limit",
             "per-domain connection limit", "trop de connexions", "max emails per hour", "frequency limited",
             "daily message quota exceeded", "maximum sending rate exceeded",
             "already made numerous attempts to deliver this message" } },

  -- Content the recipient's policy does not allow.
  { category = "policyviolation",
    text = { "local policy violation", "for policy reasons", "denied by policy",
             "rejected due to local policy", "organizational settings", "organization policy",
             "illegal attachment", "protocol violation", "members-only list", "closed mailing list",
             "not subscribed to this group", "not accepting mail with", "mass mailer",
             "message given low priority", "messages with multiple addresses", "message not allowed",
             "images or other attachments", "header error", { "exceeded the", "allowable number of posts" } } },

  -- The sending IP or network is refused: blocklists, dynamic ranges.
  { category = "blocked",
    status = { "4.7.1", "4.2.1" },
    unless = { "sender address", "spf", "dmarc", "spam" } },
  { category = "blocked",
    text = { "blocked using", "blocked by", "blocked - see", "blocked ip", "ip blocked", "is blocked",
             "been blocked", "blocked for abuse", ":blocked)", "blacklisted by", "blacklisted", "black list",
             "block list", "blocklist", "dnsbl", "rbl", "spamhaus", "spamcop", "barracudacentral", "abuseat",
             "sorbs", "client host rejected", "helo command rejected", "connection refused by",
             "connection reset by peer", "connection dropped", "not currently accepting mail from your ip",
             "please use the smtp server of your isp", "dynamic ip", "dynamic/zombied",
             "banned sending ip", "not allowed to send mail from", "go away", "you are not allowed to connect",
             "service not available, closing transmission channel", "service refused, please try later",
             "esmtp not accepting connections", "your ip address", "my name was rejected", "invalid ip for sending mail",
             "open proxy", "after initial connection", "confirm this mail server", "may not be mail exchanger",
             "was not authenticated", "refused to talk to me", "bad sender ip", "sender ip address rejected",
             "server access forbidden by your ip", "no access from mail server", "currently sending spam",
             "too many spams from your ip", "you are sending spam", "extreme bad ip profile",
             "connections will not be accepted from", "looks suspiciously like spammer",
             "your server requires confirmation", "no matches to nameserver query",
             "to submit messages to this e-mail system has been rejected" } },

  -----------------------------------------------------------------------
  -- Words that only make sense once the cases above are ruled out.
  -----------------------------------------------------------------------

  { category = "virusdetected",
    command = { "data", "none" },
    text = { "virus detected", "infected with a virus", "potentially executable attachment",
             "prohibited virus", "phishing/malicious", "used by recent viruses" } },
  { category = "systemerror",
    text = { "system error", "internal error", "internal server error", "server configuration error",
             "local configuration error", "mail system configuration error", "system config error",
             "misconfigured", "local error in processing", "temporary local problem",
             "loops back to myself", "loop was found", "forwarding loop broken", "it would create a mail loop",
             "duplicated message-id", "loop alert", "could not load drd", "queue file write error",
             "interrupted system call", "timeout waiting for input", "can't create user output file",
             "service currently unavailable", "transaction failed", "encountered an error while being processed",
             "unable to contact ldap server", "no mdb", "temporary mta failure on relaying",
             "rejected by next-hop mta on relaying", { "unable to connect ", "daemon" } } },
  { category = "networkerror",
    text = { "host is unreachable", "no route to host", "host name lookup failure", "name service error",
             "malformed or unexpected name server reply", "malformed name server reply", "too many hops",
             "routing loop", "message looping", "hop count exceeded", "exceeded maximum hop count", "forwarding loop",
             "forwarded more than the maximum", "could not connect and send",
             "dns records for the destination computer could not be found", "lost connection",
             "network error", "unable to resolve route", "host not found, try again",
             "wasn't able to establish an smtp connection", "couldn't establish an smtp connection" } },
  { category = "systemfull",
    status = { "4.3.1", "5.3.1", "4.4.5" },
    text = { "mail system full", "insufficient system storage", "insufficient disk space" } },
  { category = "notaccept", hard = "permanent",
    status = { "5.3.2", "5.7.27" },
    reply = { 521, 556 },
    text = { "no route for current request", "smtp protocol returned a permanent error" } },
  { category = "expired",
    status = { "4.4.7", "5.4.7" },
    text = { "retry timeout exceeded", "delivery expired", "message expired", "queue too long",
             "too long in queue", "giving up on", "connection timed out", "timed out", "timeout",
             "have been failing for a long time", "has been delayed", "delivery time expired",
             "unable to deliver message after multiple retries", "will be retried", "could not be delivered for",
             "did not accept our requests to connect", "not reachable within the allowed queue period",
             "could not find a gateway for", "server did not respond", "is not responding",
             "delivery attempts will continue", "envelope expired", "not delivered within", "attempts:",
             "host not reachable", "unable to connect to remote server", "could not deliver for the last",
             "retry time not reached for any host after a long failure period", "has been frozen",
             "was frozen on arrival", "failed to deliver to domain ", "it has not been collected after",
             "in the queue too long", "message timed out", "message expired after sitting in queue" } },
  { category = "failedstarttls", command = { "starttls" } },
  { category = "failedstarttls",
    reply = { 523, 524, 538 },
    text = { "starttls is required", "tls required but not supported", "must issue a starttls",
             "tls negotiation failed", "does not support tls", "tls required for rcpt domain",
             "route requires encryption", "route requires tls" } },
  { category = "securityerror",
    text = { "authentication required", "authentication failure", "authentication credentials invalid",
             "authentication turned on", "smtp authentication", "unauthenticated senders not allowed",
             "verification failure", "executable files are not allowed",
             "not authorized to send", "account not subscribed to ses", "dead domain",
             "you don't authenticate", { "authentication failed; server ", " said: " } } },
  { category = "mailererror",
    text = { "procmail", "maildrop", "command failed", "command died with status", "command output:",
             "mailer error", "pipe to |", "|| exit " } },
  { category = "syntaxerror", text = { "malformed address" } },

  -----------------------------------------------------------------------
  -- Only a code to go by.
  -----------------------------------------------------------------------

  { category = "userunknown", hard = true, text = { "x-powermta-bouncecategory: bad-mailbox" } },
  { category = "suspend", text = { "x-powermta-bouncecategory: inactive-mailbox" } },
  { category = "hostunknown", hard = true, text = { "x-powermta-bouncecategory: bad-domain" } },
  { category = "expired", text = { "x-powermta-bouncecategory: message-expired" } },
  { category = "networkerror", text = { "x-powermta-bouncecategory: no-answer-from-host" } },
  { category = "systemerror", text = { "x-powermta-bouncecategory: routing-errors" } },
  { category = "filtered", status = { "5.2.0", "5.2.1", "5.2.4", "4.2.4", "5.1.4" } },
  { category = "systemerror", status = { "5.3.0", "*.3.3", "*.3.5", "*.1.9", "*.4.3", "5.5.4", "*.5.5", "4.5.3" } },
  { category = "networkerror", status = { "5.4.0", "*.4.2", "*.4.4", "*.4.6", "*.4.8" } },
  { category = "expired", status = { "4.4.1" } },
  { category = "syntaxerror", status = { "5.5.2", "5.5.6" } },
  { category = "contenterror", status = { "*.6.*" } },
  { category = "securityerror", status = { "*.7.*" } },
  { category = "expired", action = { "delayed", "expired" } },
  { category = "blocked", command = { "helo", "connect" } },
  { category = "syntaxerror", reply = { "40x", "50x" } },
}
