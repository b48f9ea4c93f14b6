package demo

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"mime"
	"slices"
	"strings"
	"time"

	"corriere/core/sim"
)

// Kind is what a workload message is meant to be. The policy decides the
// class Corriere gives it; the demo shows both.
type Kind string

// Kinds of workload messages.
const (
	KindNewsletter    Kind = "newsletter"
	KindTransactional Kind = "transactional"
	KindCritical      Kind = "critical"
	KindPersonal      Kind = "personal"
)

// Tenant names of the demo accounts (rules/tenants/<name>.lua in the
// demo's workspace).
const (
	tenantShop     = "negozio"
	tenantPlatform = "ricette"
)

// shopDomain is the shop's sender domain; the default world routes its MX
// to 127.0.0.1, where the demo's sender-side receiver listens.
const shopDomain = "negozio-esempio.it"

// newsletterBatch is the most recipients one newsletter submission
// carries: the list server groups its addresses by domain and submits each
// group in batches, as bulk senders do, so that each batch is one SMTP
// transaction per hundred recipients rather than one per address.
const newsletterBatch = 100

// message is one submission of the workload.
type message struct {
	tenant string
	kind   Kind
	from   string // envelope sender
	rcpts  []string
	msgID  string // Message-ID without angle brackets
	data   []byte
	// at is when to submit it, from the start of the injection.
	at time.Duration
}

// workload is everything the demo submits. Every recipient address occurs
// once, so the events of a recipient identify its message.
type workload struct {
	messages   []*message
	recipients int
	// byRcpt maps each recipient to its message.
	byRcpt map[string]*message
}

// doctor is a professional of the "ricette" platform who writes from a
// domain of their own.
type doctor struct{ name, addr string }

var doctors = []doctor{
	{"Dott. Marco Rossi", "marco.rossi@studio-rossi.it"},
	{"Dott.ssa Anna Bianchi", "anna.bianchi@studio-bianchi.it"},
	{"Dott. Luca Conti", "luca.conti@studio-rossi.it"},
}

// domainWeights shares ordinary recipients among the default world's
// domains, roughly as an Italian shop's customer list would (Libero and
// TIM are kept small: their strict limits make a large share take minutes,
// which is what a real campaign sees). Domains of another world get weight
// 1; tarpits get none (a few recipients are added on purpose).
var domainWeights = map[string]int{
	"gmail.com": 36, "googlemail.com": 1, "acme-italia.it": 2,
	"outlook.com": 8, "hotmail.com": 9, "studio-bianchi.it": 1,
	"yahoo.com": 7, "aol.com": 1,
	"libero.it": 2, "inwind.it": 1,
	"tim.it": 1, "alice.it": 2,
	"studio-rossi.it": 1, "ferramenta-verdi.it": 1,
}

var firstNames = []string{"giulia", "marco", "francesca", "luca", "chiara", "alessandro", "sara", "matteo",
	"valentina", "andrea", "elena", "davide", "martina", "simone", "federica", "lorenzo", "paola", "giorgio",
	"silvia", "stefano", "anna", "roberto", "laura", "fabio", "elisa", "paolo", "monica", "riccardo"}

var lastNames = []string{"rossi", "russo", "ferrari", "esposito", "bianchi", "romano", "colombo", "ricci",
	"marino", "greco", "bruno", "gallo", "conti", "deluca", "mancini", "costa", "giordano", "rizzo",
	"lombardi", "moretti", "barbieri", "fontana", "santoro", "mariani", "rinaldi", "caruso", "ferrara"}

// worldFacts is what the workload needs to know about the simulated world.
type worldFacts struct {
	domains   []string // recipient domains with a weight, in world order
	weights   []int
	greylists []string // one domain of each greylisting provider
	tarpits   []string
	nolisting []string // domains whose primary MX is dead
	attacked  []string // domains whose MX an attacker tampers with
	nullMX    []string
	nx        []string
	unknown   []prefixed // a domain and the prefix that makes a user unknown
	full      []prefixed
	spam      []prefixed
	bounce    []prefixed // accepted, then bounced asynchronously
}

type prefixed struct{ domain, prefix string }

func factsOf(w *sim.World) worldFacts {
	var f worldFacts
	for _, p := range w.Providers {
		first := p.Domains[0].Name
		if p.Tarpit > 0 {
			for _, d := range p.Domains {
				f.tarpits = append(f.tarpits, d.Name)
			}
			continue
		}
		if p.Attack != "" {
			for _, d := range p.Domains {
				f.attacked = append(f.attacked, d.Name)
			}
			continue
		}
		if p.Greylist != nil {
			f.greylists = append(f.greylists, first)
		}
		for _, d := range p.Domains {
			wt, ok := domainWeights[d.Name]
			if !ok {
				wt = 1
			}
			f.domains = append(f.domains, d.Name)
			f.weights = append(f.weights, wt)
			if len(d.MX) > 1 && d.MX[0].Dead {
				f.nolisting = append(f.nolisting, d.Name)
			}
		}
		if r := p.Recipients.UnknownPrefix; r != "" {
			f.unknown = append(f.unknown, prefixed{first, r})
		}
		if r := p.Recipients.FullPrefix; r != "" {
			f.full = append(f.full, prefixed{first, r})
		}
		if r := p.Recipients.SpamPrefix; r != "" {
			f.spam = append(f.spam, prefixed{first, r})
		}
		if a := p.AsyncBounce; a != nil && a.Prefix != "" {
			f.bounce = append(f.bounce, prefixed{first, a.Prefix})
		}
	}
	f.nullMX = w.NullMX
	f.nx = w.NXDomains
	return f
}

// generator draws recipients and writes messages, deterministically for a
// seed.
type generator struct {
	r     *rand.Rand
	facts worldFacts
	seen  map[string]bool
	start time.Time // the Date of the first message
}

// newWorkload builds a workload of about n recipients for world w: a
// newsletter campaign (most of n, in batches), order confirmations and
// shipping notices, verification codes and prescriptions (critical), and
// doctors' personal mail; spread over the first spread of the injection.
// A stale part of the newsletter list (unknown users, full mailboxes, typo
// and null-MX domains) and a few recipients at each awkward receiver
// (greylisting, nolisting, tarpit) are always included.
func newWorkload(w *sim.World, n int, seed int64, spread time.Duration) (*workload, error) {
	if n < 20 {
		return nil, fmt.Errorf("demo: a workload needs at least 20 messages, not %d", n)
	}
	g := &generator{
		r:     rand.New(rand.NewPCG(uint64(seed), 0x636f727269657265)),
		facts: factsOf(w),
		seen:  map[string]bool{},
		start: time.Date(2025, 4, 14, 9, 0, 0, 0, time.FixedZone("CEST", 2*3600)),
	}
	if len(g.facts.domains) == 0 {
		return nil, fmt.Errorf("demo: the world has no recipient domains")
	}
	critical := max(2, n/200)
	personal := max(3, n/50)
	transactional := max(5, n/16)
	newsletter := n - critical - personal - transactional

	wl := &workload{byRcpt: map[string]*message{}}
	wl.messages = append(wl.messages, g.newsletter(newsletter)...)
	var trickle []*message
	for i := range transactional {
		trickle = append(trickle, g.transactional(i))
	}
	for i := range critical {
		trickle = append(trickle, g.critical(i))
	}
	for i := range personal {
		trickle = append(trickle, g.personal(i))
	}
	g.r.Shuffle(len(trickle), func(i, j int) { trickle[i], trickle[j] = trickle[j], trickle[i] })
	for i, m := range trickle {
		m.at = spread * time.Duration(i) / time.Duration(len(trickle))
	}
	wl.messages = append(wl.messages, trickle...)
	for _, m := range wl.messages {
		for _, r := range m.rcpts {
			wl.byRcpt[r] = m
		}
		wl.recipients += len(m.rcpts)
	}
	return wl, nil
}

// local returns a fresh local part such as "giulia.ferrari84".
func (g *generator) local(prefix string) string {
	l := firstNames[g.r.IntN(len(firstNames))] + "." + lastNames[g.r.IntN(len(lastNames))]
	if g.r.IntN(3) > 0 {
		l += fmt.Sprint(g.r.IntN(90) + 10)
	}
	if prefix != "" {
		l = prefix + "." + l
	}
	return l
}

// addr returns a new recipient address at domain, unique in the workload.
func (g *generator) addr(prefix, domain string) string {
	for {
		a := g.local(prefix) + "@" + domain
		if !g.seen[a] {
			g.seen[a] = true
			return a
		}
	}
}

// ordinary draws a recipient from the weighted domains.
func (g *generator) ordinary() string {
	total := 0
	for _, w := range g.facts.weights {
		total += w
	}
	n := g.r.IntN(total)
	for i, w := range g.facts.weights {
		if n -= w; n < 0 {
			return g.addr("", g.facts.domains[i])
		}
	}
	return g.addr("", g.facts.domains[0])
}

// some returns a recipient with one of the prefixed behaviours, or an
// ordinary one when the world has none.
func (g *generator) some(list []prefixed) string {
	if len(list) == 0 {
		return g.ordinary()
	}
	p := list[g.r.IntN(len(list))]
	return g.addr(p.prefix, p.domain)
}

// at returns a recipient at one of domains, or an ordinary one.
func (g *generator) at(domains []string) string {
	if len(domains) == 0 {
		return g.ordinary()
	}
	return g.addr("", domains[g.r.IntN(len(domains))])
}

// share is max(min, n*permille/1000).
func share(n, permille, min int) int {
	return max(min, n*permille/1000)
}

// newsletter returns the campaign: the list, stale addresses included, in
// batches of one domain each.
func (g *generator) newsletter(n int) []*message {
	var list []string
	add := func(count int, f func() string) {
		for range count {
			list = append(list, f())
		}
	}
	add(share(n, 20, 1), func() string { return g.some(g.facts.unknown) })
	add(share(n, 4, 1), func() string { return g.some(g.facts.full) })
	add(share(n, 6, 1), func() string { return g.some(g.facts.bounce) })
	add(share(n, 4, 1), func() string { return g.at(g.facts.nx) })
	add(share(n, 2, 1), func() string { return g.at(g.facts.nullMX) })
	add(share(n, 1, 0), func() string { return g.some(g.facts.spam) })
	add(min(3, share(n, 1, 1)), func() string { return g.at(g.facts.tarpits) })
	for _, d := range g.facts.greylists {
		add(1, func() string { return g.addr("", d) })
	}
	add(len(g.facts.nolisting), func() string { return g.at(g.facts.nolisting) })
	add(min(3, share(n, 1, 1))*len(g.facts.attacked), func() string { return g.at(g.facts.attacked) })
	add(n-len(list), g.ordinary)

	byDomain := map[string][]string{}
	for _, a := range list {
		byDomain[domainOf(a)] = append(byDomain[domainOf(a)], a)
	}
	var batches [][]string
	for _, d := range slices.Sorted(maps.Keys(byDomain)) {
		for rcpts := range slices.Chunk(byDomain[d], newsletterBatch) {
			batches = append(batches, rcpts)
		}
	}
	g.r.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	out := make([]*message, len(batches))
	for i, rcpts := range batches {
		m := &message{tenant: tenantShop, kind: KindNewsletter, from: "news@" + shopDomain, rcpts: rcpts}
		m.msgID = fmt.Sprintf("saldi-%03d.%s@%s", i+1, g.token(), shopDomain)
		m.data = g.newsletterBody(m, g.start)
		out[i] = m
	}
	return out
}

// transactional returns an order confirmation or a shipping notice. One in
// a hundred customers mistyped their address at checkout.
func (g *generator) transactional(i int) *message {
	rcpt := g.ordinary()
	switch {
	case i%100 == 37:
		rcpt = g.at(g.facts.nx)
	case i%100 == 71:
		rcpt = g.some(g.facts.unknown)
	}
	order := 10234 + i
	m := &message{tenant: tenantShop, kind: KindTransactional, rcpts: []string{rcpt}}
	m.msgID = fmt.Sprintf("ordine-%d.%s@%s", order, g.token(), shopDomain)
	date := g.start.Add(time.Duration(i) * time.Second)
	if i%3 == 2 {
		m.from = "spedizioni@" + shopDomain
		m.data = g.plain(m, date, "Negozio Esempio <spedizioni@"+shopDomain+">",
			fmt.Sprintf("Il tuo ordine n. %d è stato spedito", order), nil,
			fmt.Sprintf("Ciao %s,\r\n\r\nil tuo ordine n. %d è partito oggi con il corriere espresso.\r\n"+
				"Numero di tracciamento: IT%09d\r\n\r\nGrazie per aver acquistato da Negozio Esempio.\r\n",
				greeting(rcpt), order, g.r.IntN(1e9)))
		return m
	}
	m.from = "ordini@" + shopDomain
	m.data = g.plain(m, date, "Negozio Esempio <ordini@"+shopDomain+">",
		fmt.Sprintf("Conferma ordine n. %d", order), nil,
		fmt.Sprintf("Ciao %s,\r\n\r\ngrazie per il tuo ordine n. %d.\r\n\r\n"+
			"  1 x Zaino da escursionismo 30 l      59,90 EUR\r\n"+
			"  1 x Borraccia termica 0,75 l         19,90 EUR\r\n"+
			"  Spedizione                            0,00 EUR\r\n"+
			"  Totale                               79,80 EUR\r\n\r\n"+
			"Riceverai un'altra email quando il pacco partirà.\r\n", greeting(rcpt), order))
	return m
}

// critical returns a verification code (the shop's tenant rules make it
// critical by subject) or an electronic prescription a doctor sends through
// the platform (critical by the platform's rules).
func (g *generator) critical(i int) *message {
	rcpt := g.ordinary()
	date := g.start.Add(time.Duration(i) * 7 * time.Second)
	if i%2 == 0 {
		m := &message{tenant: tenantShop, kind: KindCritical, from: "sicurezza@" + shopDomain, rcpts: []string{rcpt}}
		m.msgID = fmt.Sprintf("otp-%d.%s@%s", i, g.token(), shopDomain)
		code := g.r.IntN(900000) + 100000
		m.data = g.plain(m, date, "Negozio Esempio <sicurezza@"+shopDomain+">",
			fmt.Sprintf("Il tuo codice di verifica: %d", code), nil,
			fmt.Sprintf("Il tuo codice di verifica è %d.\r\nScade tra 10 minuti. Se non hai chiesto tu di "+
				"reimpostare la password, ignora questo messaggio.\r\n", code))
		return m
	}
	d := doctors[i/2%len(doctors)]
	m := &message{tenant: tenantPlatform, kind: KindCritical, from: d.addr, rcpts: []string{rcpt}}
	m.msgID = fmt.Sprintf("nre-%d.%s@%s", i, g.token(), domainOf(d.addr))
	nre := fmt.Sprintf("1200A%010d", g.r.IntN(1e9))
	m.data = g.plain(m, date, d.name+" <"+d.addr+">",
		"Ricetta elettronica NRE "+nre, []string{"X-Mailer: Ricette Online 4.2"},
		fmt.Sprintf("Gentile %s,\r\n\r\nle invio la ricetta elettronica.\r\nNumero di ricetta (NRE): %s\r\n"+
			"Può ritirare il farmaco in qualsiasi farmacia mostrando questo numero e la tessera sanitaria.\r\n\r\n%s\r\n",
			greeting(rcpt), nre, d.name))
	return m
}

// personal returns a doctor's own mail to a patient, written in a mail
// client; some are replies in a thread. The first goes to a patient whose
// address no longer exists and the second to one whose provider accepts
// and bounces later, so doctors receive a bounce of each kind: the late
// one through the bounce listener.
func (g *generator) personal(i int) *message {
	rcpt := g.ordinary()
	switch {
	case i == 0:
		rcpt = g.some(g.facts.unknown)
	case i == 1:
		rcpt = g.some(g.facts.bounce)
	}
	d := doctors[i%len(doctors)]
	m := &message{tenant: tenantPlatform, kind: KindPersonal, from: d.addr, rcpts: []string{rcpt}}
	m.msgID = fmt.Sprintf("%s.%s@%s", g.token(), g.token(), domainOf(d.addr))
	extra := []string{"User-Agent: Mozilla Thunderbird 128.3"}
	subject := "Esito degli esami"
	if i%2 == 1 {
		subject = "Re: Appuntamento di giovedì"
		extra = append(extra, fmt.Sprintf("In-Reply-To: <%s@%s>", g.token(), domainOf(rcpt)))
	}
	m.data = g.plain(m, g.start.Add(time.Duration(i)*13*time.Second), d.name+" <"+d.addr+">", subject, extra,
		fmt.Sprintf("Buongiorno %s,\r\n\r\nho visto gli esami: i valori sono nella norma. "+
			"Ci vediamo al prossimo controllo tra sei mesi.\r\n\r\nCordiali saluti,\r\n%s\r\n", greeting(rcpt), d.name))
	return m
}

// token returns a short random string for Message-IDs.
func (g *generator) token() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 10)
	for i := range b {
		b[i] = digits[g.r.IntN(len(digits))]
	}
	return string(b)
}

// plain writes a one-recipient text/plain message.
func (g *generator) plain(m *message, date time.Time, from, subject string, extra []string, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		from, m.rcpts[0], encodeWord(subject), date.Format(time.RFC1123Z), m.msgID)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

// newsletterBody writes the campaign message: list headers, the
// one-click unsubscribe of RFC 8058, and text and HTML alternatives.
func (g *generator) newsletterBody(m *message, date time.Time) []byte {
	const boundary = "=_saldi_primavera"
	var b strings.Builder
	fmt.Fprintf(&b, "From: Negozio Esempio <news@%[1]s>\r\nTo: Clienti Negozio Esempio <news@%[1]s>\r\n"+
		"Subject: %[2]s\r\nDate: %[3]s\r\nMessage-ID: <%[4]s>\r\n"+
		"List-Id: Offerte Negozio Esempio <offerte.%[1]s>\r\n"+
		"List-Unsubscribe: <https://www.%[1]s/disiscrizione?lista=offerte>, <mailto:disiscrizione@%[1]s?subject=offerte>\r\n"+
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"+
		"X-Corriere-Campaign: saldi-primavera\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"%[5]s\"\r\n\r\n",
		shopDomain, encodeWord("Saldi di primavera: -30% su tutto il catalogo"), date.Format(time.RFC1123Z), m.msgID, boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	b.WriteString("Saldi di primavera da Negozio Esempio\r\n\r\n" +
		"Fino a domenica, il 30% di sconto su zaini, tende e abbigliamento tecnico.\r\n" +
		"Spedizione gratuita sopra i 49 euro.\r\n\r\n" +
		"Scopri le offerte: https://www." + shopDomain + "/saldi\r\n\r\n" +
		"Ricevi questa email perché sei iscritto alle offerte di Negozio Esempio.\r\n" +
		"Per non riceverne più: https://www." + shopDomain + "/disiscrizione?lista=offerte\r\n")
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	b.WriteString("<!doctype html><html><body style=\"font-family:sans-serif\">\r\n" +
		"<h1>Saldi di primavera</h1>\r\n" +
		"<p>Fino a domenica, il <b>30% di sconto</b> su zaini, tende e abbigliamento tecnico.</p>\r\n" +
		"<p>Spedizione gratuita sopra i 49 euro.</p>\r\n" +
		"<p><a href=\"https://www." + shopDomain + "/saldi\">Scopri le offerte</a></p>\r\n" +
		"<p style=\"font-size:small\">Ricevi questa email perché sei iscritto alle offerte di Negozio Esempio. " +
		"<a href=\"https://www." + shopDomain + "/disiscrizione?lista=offerte\">Disiscriviti</a></p>\r\n" +
		"</body></html>\r\n")
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return []byte(b.String())
}

// encodeWord encodes a header text as an RFC 2047 encoded word when it is
// not plain ASCII.
func encodeWord(s string) string {
	if !slices.ContainsFunc([]byte(s), func(c byte) bool { return c >= 0x80 }) {
		return s
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// greeting returns the first name in an address, capitalised, or
// "cliente".
func greeting(addr string) string {
	local, _, _ := strings.Cut(addr, "@")
	for part := range strings.SplitSeq(local, ".") {
		if slices.Contains(firstNames, part) {
			return strings.ToUpper(part[:1]) + part[1:]
		}
	}
	return "cliente"
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}
