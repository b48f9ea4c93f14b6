package luart

import (
	"bytes"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	lua "github.com/yuin/gopher-lua"

	"corriere/core/address"
	"corriere/core/message"
)

// The message object. Scripts receive the message as a userdata whose
// methods read and edit the Go message in place: nothing is copied into Lua
// unless a method is called, and one userdata per Lua state is reused for
// every call (its value is cleared after the call, so a script that keeps a
// reference gets an error instead of a stale message).

// msgMethods are the methods of the message object, documented in doc.go.
var msgMethods = map[string]lua.LGFunction{
	"id":              msgID,
	"header":          msgHeader,
	"headers":         msgHeaders,
	"has_header":      msgHasHeader,
	"set_header":      msgSetHeader,
	"add_header":      msgAddHeader,
	"remove_header":   msgRemoveHeader,
	"sender":          msgSender,
	"set_sender":      msgSetSender,
	"author":          msgAuthor,
	"set_author":      msgSetAuthor,
	"recipients":      msgRecipients,
	"recipient_count": msgRecipientCount,
	"size":            msgSize,
	"tenant":          msgTenant,
	"class":           msgClass,
	"campaign":        msgCampaign,
	"priority":        msgPriority,
	"auth_user":       msgAuthUser,
	"client_ip":       msgClientIP,
	"helo":            msgHelo,
	"received":        msgReceived,
}

// decoded remembers the last From: address and Subject: a state decoded,
// by raw value: scripts ask for them once per tenant rule, and decoding
// (address parsing, RFC 2047 words) costs far more than a comparison.
type decoded struct {
	fromRaw, from       string
	subjectRaw, subject string
}

// newMessageMeta returns the metatable of message objects in L.
func newMessageMeta(L *lua.LState) *lua.LTable {
	methods := L.SetFuncs(L.NewTable(), msgMethods)
	var d decoded
	methods.RawSetString("from", L.NewFunction(func(L *lua.LState) int {
		m := checkMsg(L)
		if raw := m.Header.Get("From"); raw != d.fromRaw || raw == "" {
			d.fromRaw, d.from = raw, fromAddress(m.Header)
		}
		return optString(L, d.from)
	}))
	methods.RawSetString("subject", L.NewFunction(func(L *lua.LState) int {
		m := checkMsg(L)
		if raw := m.Header.Get("Subject"); raw != d.subjectRaw || raw == "" {
			d.subjectRaw, d.subject = raw, decodeSubject(m.Header)
		}
		return optString(L, d.subject)
	}))
	mt := L.NewTable()
	mt.RawSetString("__index", methods)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		m := checkMsg(L)
		L.Push(lua.LString("message " + m.ID))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LString("message"))
	return mt
}

// checkMsg returns the message behind the receiver of a method call.
func checkMsg(L *lua.LState) *message.Message {
	ud, ok := L.Get(1).(*lua.LUserData)
	if !ok {
		L.RaiseError("message method called without a message: use msg:method(), not msg.method()")
	}
	m, ok := ud.Value.(*message.Message)
	if !ok || m == nil {
		L.RaiseError("message is no longer available: a message object is valid only during the hook call that received it")
	}
	return m
}

// optString pushes s, or nil when s is empty, so that scripts can write
// `if msg:header("List-Id") then`.
func optString(L *lua.LState, s string) int {
	if s == "" {
		L.Push(lua.LNil)
	} else {
		L.Push(lua.LString(s))
	}
	return 1
}

func msgID(L *lua.LState) int { return optString(L, checkMsg(L).ID) }

func msgHeader(L *lua.LState) int {
	m := checkMsg(L)
	return optString(L, m.Header.Get(L.CheckString(2)))
}

func msgHeaders(L *lua.LState) int {
	m := checkMsg(L)
	vals := m.Header.Values(L.CheckString(2))
	t := L.CreateTable(len(vals), 0)
	for _, v := range vals {
		t.Append(lua.LString(v))
	}
	L.Push(t)
	return 1
}

func msgHasHeader(L *lua.LState) int {
	m := checkMsg(L)
	L.Push(lua.LBool(m.Header.Has(L.CheckString(2))))
	return 1
}

// checkField returns a header field name and value from arguments 2 and 3,
// refusing what would corrupt the header: a name outside RFC 5322 ftext,
// or a value with CR, LF or NUL (header injection).
func checkField(L *lua.LState) (string, string) {
	name := L.CheckString(2)
	value := L.CheckString(3)
	if name == "" {
		L.RaiseError("header name is empty")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			L.RaiseError("header name %q: only printable ASCII without ':' is allowed", name)
		}
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		L.RaiseError("header %s: value must not contain CR, LF or NUL", name)
	}
	return name, value
}

func msgSetHeader(L *lua.LState) int {
	m := checkMsg(L)
	name, value := checkField(L)
	m.Header.Del(name)
	m.Header.AddRaw(formatField(name, value))
	return 0
}

func msgAddHeader(L *lua.LState) int {
	m := checkMsg(L)
	name, value := checkField(L)
	m.Header.AddRaw(formatField(name, value))
	return 0
}

// formatField formats a header field folded as go-message folds it, but
// with the name spelled as the script spelled it ("Feedback-ID", not the
// canonical "Feedback-Id"): receivers compare names case-insensitively,
// people reading headers do not.
func formatField(name, value string) []byte {
	var h textproto.Header
	h.Add(name, value)
	var b bytes.Buffer
	_ = textproto.WriteHeader(&b, h) // checkField vetted name and value; a bytes.Buffer does not fail
	raw := b.Bytes()[:b.Len()-2]     // drop the blank line that ends a header
	copy(raw, name)
	return raw
}

func msgRemoveHeader(L *lua.LState) int {
	m := checkMsg(L)
	m.Header.Del(L.CheckString(2))
	return 0
}

// decodeSubject is the Subject: with RFC 2047 encoded words decoded (the
// raw value if they do not decode).
func decodeSubject(h textproto.Header) string {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	s, err := mh.Subject()
	if err != nil {
		return h.Get("Subject")
	}
	return s
}

// fromAddress is the first address of the From: field, or "".
func fromAddress(h textproto.Header) string {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	list, err := mh.AddressList("From")
	if err != nil || len(list) == 0 {
		return ""
	}
	return list[0].Address
}

func msgSender(L *lua.LState) int { L.Push(lua.LString(checkMsg(L).Sender)); return 1 }

// checkAddr returns argument 2 as a mailbox; "" is allowed when null is.
func checkAddr(L *lua.LState, m *message.Message, null bool) string {
	s := L.CheckString(2)
	if s == "" && null {
		return ""
	}
	a, err := address.Parse(s, address.Options{AllowUTF8: m.UTF8})
	if err != nil {
		L.RaiseError("address %q: %v", s, err)
	}
	return a.String()
}

func msgSetSender(L *lua.LState) int {
	m := checkMsg(L)
	m.Sender = checkAddr(L, m, true)
	return 0
}

func msgAuthor(L *lua.LState) int { return optString(L, checkMsg(L).Author) }

func msgSetAuthor(L *lua.LState) int {
	m := checkMsg(L)
	m.Author = checkAddr(L, m, true)
	return 0
}

func msgRecipients(L *lua.LState) int {
	m := checkMsg(L)
	t := L.CreateTable(len(m.Recipients), 0)
	for _, r := range m.Recipients {
		t.Append(lua.LString(r.Addr))
	}
	L.Push(t)
	return 1
}

func msgRecipientCount(L *lua.LState) int {
	L.Push(lua.LNumber(len(checkMsg(L).Recipients)))
	return 1
}

func msgSize(L *lua.LState) int { L.Push(lua.LNumber(checkMsg(L).Size())); return 1 }

func msgTenant(L *lua.LState) int { return optString(L, checkMsg(L).Tenant) }

func msgClass(L *lua.LState) int { return optString(L, string(checkMsg(L).Class)) }

func msgCampaign(L *lua.LState) int { return optString(L, checkMsg(L).Campaign) }

func msgPriority(L *lua.LState) int { L.Push(lua.LNumber(checkMsg(L).Priority)); return 1 }

func msgAuthUser(L *lua.LState) int { return optString(L, checkMsg(L).AuthUser) }

func msgClientIP(L *lua.LState) int { return optString(L, checkMsg(L).ClientIP) }

func msgHelo(L *lua.LState) int { return optString(L, checkMsg(L).Helo) }

func msgReceived(L *lua.LState) int {
	m := checkMsg(L)
	if m.Received.IsZero() {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(float64(m.Received.UnixMilli()) / 1000))
	return 1
}
