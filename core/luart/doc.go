// Package luart runs Corriere's policy in Lua (gopher-lua): the hooks that
// classify and rewrite messages at ingest, choose the egress IP and the
// sending limits, and interpret SMTP replies and asynchronous bounces. An
// *Engine implements policy.Policy and tenant.Directory; deliverability
// engineers change the policy by editing files, live, without a restart.
//
// # Files and generations
//
// Two directories hold the policy (Options.ScriptsDir, Options.RulesDir):
//
//	scripts/*.lua            default hooks, one file per hook by convention
//	scripts/tenants/T.lua    hooks of tenant T (classify, rewrite, route, on_response)
//	rules/*.lua              data tables; rules/x.lua is the module "rules.x"
//	rules/tenants/T.lua      tenant T's account and data; all of them are "rules.tenants"
//
// Other subdirectories (key files of plugins) and names starting with "."
// or "#" (editor files) are ignored. Every file is compiled and loaded
// together into a generation. New loads generation 1 and fails if anything
// is wrong, so a node never starts on a broken policy. Reload (called by
// Watch on a file change, by the server on SIGHUP or from the admin API)
// builds the next generation; it becomes current atomically only when
// every file compiles and loads, a smoke call of every hook succeeds (for
// every tenant, and shape for every provider), and every extension.Preparer (a plugin
// with files of its own in the rules directory, such as rules/dkim.lua)
// loads its files; the plugins switch to them right after. Otherwise the current
// generation stays and the error, "file:line: message", is logged, counted
// (Status.ReloadErrors) and kept in Status.LastError. Calls in progress
// finish on the generation they started with.
//
// Each script file runs once per Lua state in an environment of its own
// (its globals are its own; unknown names resolve to the shared library);
// the hooks are the global functions it defines with the names below.
// Values a hook stores in globals or upvalues survive only within one of
// the generation's states, which may be replaced at any time (see
// Options.StateMemory), so they can cache what is derived from rules data
// but cannot count or remember anything across messages. A
// default hook defined twice, a file that defines no hook, and a tenant
// file that defines shape or on_bounce (which only have defaults) refuse
// the generation. A hook that no default script defines is decided by the
// plain Go policy (policy.Default; on_bounce by the bounce rules). A tenant
// file sees the defaults as defaults.<hook>, so an override can adjust the
// default answer; what it does not define falls back to the default.
//
// # Concurrency and cost
//
// gopher-lua states are not safe for concurrent use. Each generation keeps
// a pool of up to Options.PoolSize prepared states: a call takes a state,
// runs the hook, returns the state; when all are busy it waits (outside its
// time budget), so at most PoolSize hook calls compete for the CPU and the
// budget measures the hook rather than the crowd. Compiling happens once
// per generation; preparing a state runs the compiled files and happens at
// most PoolSize times per generation. States of a replaced generation are
// closed as they come back. The message object and the argument tables are reused
// per state. Provider is pure Go: the MX patterns of rules/providers.lua
// are compiled once per generation and results are cached. Shape runs Lua
// once per (generation, provider, source) and caches the limits.
//
// # Sandbox and budgets
//
// Scripts run in the sandbox of core/luadata, the one every Lua file of
// Corriere runs in: the base library without dofile, loadfile, load,
// loadstring, require (replaced), module, print, collectgarbage, getfenv
// and setfenv; string, table and math. There is no os, io,
// debug, coroutine or package library, and require serves only the modules
// below: there is no file-system search path. The sandbox guards against
// mistakes in a script (a loop, a nil, a typo), not against its author,
// who already controls the policy.
//
// Every hook call runs under a time budget, Options.CallTimeout, and a
// memory budget, Options.CallMemory; preparing a state runs under
// Options.LoadTimeout. gopher-lua has no allocator hook, but its VM asks
// the call's context before every instruction whether to stop: the
// context of a call is the state's own (no timer, no allocation), and a
// process-wide watchdog, ticking every millisecond while calls are in
// progress, stops the calls past their time and, when the process
// allocated a quarter of the budget since a call's last check, asks the
// call to measure itself at its next instruction, on its own goroutine.
// The measure is an estimate of what the call can reach (the registers of
// every frame, upvalues, the globals and environments of the scripts, the
// loaded modules) beyond what the state kept before the call; it stops
// counting as soon as it passes the budget, and allocation by other
// goroutines only ever costs a call a measure, never a stop. One Go call
// cannot be interrupted, so string.format (widths over 99), string.gsub
// (a string replacement that could build more than the budget),
// table.concat (more than the budget) and string.rep (more than 1 MiB)
// refuse their result up front.
//
// What a state keeps between calls (globals, upvalues, module tables)
// beyond the loaded policy is bounded by Options.StateMemory: it is
// measured when the process allocated a quarter of that since the last
// measure, after a call that was measured while it ran, and every 256
// calls; a state over it is discarded (a warning log line,
// Status.StateResets) and the next call prepares a fresh one. Globals are
// a per-state cache that may be reset at any time.
//
// A hook that runs out of a budget is stopped and its state discarded; a
// hook that raises an error, or returns a table the engine cannot read,
// fails too. Either way the Policy method returns a *HookError with the
// script position (wrapping ErrBudget for the time budget, ErrMemoryBudget
// for the memory budget), the failure is counted per hook (Status.Hooks)
// and logged with the position (at most one line per second per hook),
// and the core applies the method's safe outcome: a temporary failure at
// ingest, a retry at delivery. Never a silent drop, never a crash.
//
// # Quarantine
//
// The states of a generation are shared by every caller, so calls that
// loop until their budget would hold them all and take the CPU from
// everybody else. Each budget failure is a strike against a key: the
// hook, the message's tenant and, for classify and rewrite, the client
// (its authenticated user, or its IP address); the delivery-side hooks
// have no client, so their key is the hook and the tenant. The client is
// part of the key because one tenant's messages, or one sender's, can be
// crafted to make even the shared default hook loop: the key isolates the
// sender, not the script. With Options.QuarantineStrikes strikes within
// Options.QuarantineWindow the key is quarantined for
// Options.QuarantineTime (each new failure extends it): its calls still
// run, so its ordinary messages pass, but under Options.QuarantineTimeout
// (a few milliseconds), and a call that fails again returns only when its
// normal time budget would have ended, holding no Lua state and no CPU
// meanwhile, so an offender keeps its pace but costs little. Quarantine
// and release (noticed on the key's first call after the time is over) are
// logged and emitted as event.PolicyLoad with Category
// event.HookQuarantined or event.HookReleased; Status.Quarantined lists the
// keys in quarantine.
//
// # Hooks
//
// classify(msg) decides, at ingest, tenant, class, campaign and priority:
//
//	return { tenant = "acme",      -- optional: defaults to msg:tenant()
//	         class = "newsletter", -- "newsletter", "transactional", "critical", "personal"
//	         campaign = "spring",  -- optional
//	         priority = 0 }        -- optional: higher goes first within the class
//
// rewrite(msg) edits the classified message in place through the message
// methods (header fields, envelope sender, author) and returns nothing. On
// error the message is refused with a temporary failure, so partial edits
// never leave.
//
// route(msg, rcpt) chooses the egress for one recipient, before every
// attempt. rcpt is { address=, domain=, provider=, mx=, attempts=,
// previous_source= }; the result is { pool = "bulk", source = "192.0.2.10",
// helo = "out10.example.net", tls = "auto" }: source must be an IP address
// or absent (the system chooses), helo defaults to the EHLO name
// Options.Sources gives the source, and tls is how the session is
// protected: "auto" (the default: DANE, else the domain's MTA-STS policy,
// else opportunistic STARTTLS), "opportunistic", "required" (TLS with a
// certificate valid for the MX host), "dane" (only DANE-authenticated
// hosts) or "mta-sts" (the domain's MTA-STS policy, enforced even in
// testing mode).
//
// shape(provider, source) returns the sending limits for a source IP ("" when
// the system chooses the address) at a provider:
//
//	{ connections = 10, messages_per_connection = 50, recipients_per_message = 50,
//	  per_second = 0, per_minute = 300, per_hour = 0, per_day = 0, burst = 20 }
//
// Missing or zero fields mean "no limit of this kind". Three more fields set
// how the lane recovers from a receiver's complaints (see
// rules/providers.lua): suspend_delay ("10m" when absent), recovery_interval
// ("30s") and recovery_step (1.25, above 1).
//
// on_response(attempt) interprets one SMTP reply, whether at connect time,
// after RCPT TO or after DATA, or a network failure. attempt is { stage=
// ("connect", "helo", "starttls", "mail", "rcpt", "data"), code=, status=
// ("4.7.0" or ""), text=, network= (true when no reply was read), recipient=,
// tenant=, class=, provider=, mx=, source=, attempts=, age= (seconds since
// acceptance) }; strings are never nil. The result:
//
//	{ action = "retry",      -- "deliver", "retry", "bounce", "suspend"
//	  delay = "5m",          -- seconds or "90s"/"15m"/"2h": next attempt, or the pause
//	  category = "blocked",  -- the bounce taxonomy of rules/bounces.lua
//	  scope = "source",      -- what a suspension pauses: "recipient", "provider", "source"
//	  rate_factor = 0.5,     -- optional: multiply the scope's rate (0..1)
//	  hard = true }          -- bounce only: never mail this address again
//
// Scope defaults to "recipient", or "source" for a suspension. A bounce
// suppresses the recipient only when the verdict says hard = true (absent
// means soft): the core follows the policy, it does not judge categories.
//
// on_bounce(report) classifies one recipient of an asynchronous bounce or
// feedback report. report is { kind= ("dsn", "text", "arf", "autoreply"),
// recipient=, action=, status=, reply_code=, diagnostic=, remote_mta=,
// feedback_type=, subject=, from= }; the result is { category = "userunknown",
// hard = true }. Hard means: never mail this address again.
//
// Return tables are read strictly: an unknown field or a value of the
// wrong type is an error of the hook, reported at the hook's definition, so
// a typo fails `corriere rules check` instead of being ignored.
//
// # The message object
//
// msg is a userdata over the Go message, valid only during the call that
// received it; nothing is copied into Lua until a method asks for it.
// Methods returning strings return nil when the value is absent, except
// sender, which is "" for the null sender.
//
//	msg:id()                       spool id
//	msg:header(name)               first value of a header field, or nil
//	msg:headers(name)              every value, as a list
//	msg:has_header(name)           true if the field is present
//	msg:set_header(name, value)    replace every field called name
//	msg:add_header(name, value)    add a field at the top
//	msg:remove_header(name)        remove every field called name
//	msg:subject()                  Subject with encoded words decoded
//	msg:from()                     address of the From: field
//	msg:sender(), msg:set_sender(a)  envelope sender (MAIL FROM)
//	msg:author(), msg:set_author(a)  who receives the message's DSNs (re-enveloping)
//	msg:recipients()               list of envelope recipient addresses
//	msg:recipient_count()          number of envelope recipients
//	msg:size()                     size in octets
//	msg:tenant(), msg:class(), msg:campaign(), msg:priority()
//	msg:auth_user(), msg:client_ip(), msg:helo()
//	msg:received()                 acceptance time, Unix seconds
//
// Header values set by a script may not contain CR, LF or NUL; addresses
// are validated.
//
// # Modules
//
// require "core":
//
//	core.sources()                    the node's egress IPs: list of { ip=, helo= }
//	core.counts(source, provider, class, window)
//	                                  live counts { attempted=, delivered=, deferred=,
//	                                  bounced=, complained= }; "" is a wildcard;
//	                                  window in seconds or "5m" (default 5m)
//	core.tenant_counts(tenant, window) the same counts for one tenant's mail
//	                                  (complained: its feedback-loop complaints)
//	core.reputation(kind, name, provider, window)
//	                                  persistent reputation { sent=, delivered=, deferred=,
//	                                  bounced=, complained=, opened=, clicked=,
//	                                  machine_opened=, scanner_clicked= } of a source IP
//	                                  (kind "ip"), "tenant", "class" or "provider" at a
//	                                  provider ("" for all); window 1h, 24h (default) or 7d
//	core.hash(...)                    stable non-negative integer of the arguments
//	core.provider(mx_host)            provider name, as the core sees it
//	core.domain(address)              lower-case domain of an address, or nil
//	core.duration("15m")              seconds
//	core.now()                        Unix seconds
//	core.log(message, key, value, ...)  info log line with hook, tenant, msg_id
//
// require "bounces" (the pattern table of rules/bounces.lua, the same the
// bounce listener uses; by enhanced status code alone when that file is
// absent):
//
//	bounces.classify(report)                  { category=, hard= }
//	bounces.classify_reply(code, status, text) { category=, hard= }
//
// require "rules.<name>" returns the table rules/<name>.lua returns, and
// require "rules.tenants" every tenant table by name (without password
// hashes). Plugins add modules through Options.Modules.
//
// # Rules data the engine reads
//
// rules/providers.lua: { default = limits, suspend = {...}, providers = {
// { name=, mx = { patterns }, limits=, suspend= }, ... } }. MX patterns are
// case-insensitive globs over the whole host name where "*" matches any
// run of characters, dots included; the first provider in file order that
// matches wins; an unmatched host is a provider named after its
// registrable domain (policy.RegistrableDomain).
//
// rules/tenants/T.lua: { password_hash= (bcrypt only; a plain "password"
// field refuses the generation), sender_domains=, reenvelope=, suppression=
// ("reject" or "drop") } plus whatever the scripts read (classification
// rules, unsubscribe addresses). The file name is the tenant name.
//
// rules/pools.lua is validated (IP addresses, pool references, warm-up
// limit names) and otherwise read only by the scripts.
package luart
