package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"corriere/core/reply"
)

// writeBufferSize is the size of the buffer commands and content are
// written through.
const writeBufferSize = 64 << 10

// aLongTimeAgo is a deadline in the past, set to abort I/O in progress.
var aLongTimeAgo = time.Unix(1, 0)

// Client is one SMTP connection to a server. It is not safe for concurrent
// use.
type Client struct {
	opts       Options
	serverName string

	raw  net.Conn // the TCP connection; deadlines are set on it
	conn net.Conn // raw, or the TLS connection over it
	rr   *replyReader
	w    *bufio.Writer

	greeting *reply.Reply
	ext      map[string]string
	caps     capabilities
	tls      *tls.ConnectionState
	broken   bool
}

// capabilities are the EHLO keywords Send consults, decoded once per EHLO.
type capabilities struct {
	pipelining   bool
	eightBitMIME bool
	smtpUTF8     bool
	dsn          bool
	size         bool
	maxSize      int64 // 0 when the server declared no limit
}

// Dial connects to the SMTP server at addr ("host:port"), reads its
// greeting, introduces itself and upgrades to TLS as opts.TLSMode says.
// serverName is the MX host name, used for TLS (SNI and verification); ""
// means the host part of addr. The context bounds the whole dial.
//
// Every failure is an *Error: Stage "connect" when no TCP connection could be
// made (try the next MX), "greeting" or "helo" with the server's Reply when
// it refused the session, "starttls" when TLS failed.
func Dial(ctx context.Context, addr, serverName string, opts Options) (*Client, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if serverName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("smtpclient: address %q: %w", addr, err)
		}
		serverName = host
	}
	d := net.Dialer{Timeout: opts.ConnectTimeout}
	if opts.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(opts.LocalAddr)}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Stage: StageConnect, Err: err}
	}
	c := &Client{
		opts:       opts,
		serverName: serverName,
		raw:        conn,
		conn:       conn,
		rr:         newReplyReader(conn),
		w:          bufio.NewWriterSize(conn, writeBufferSize),
	}
	stop := c.watch(ctx)
	err = c.open(ctx)
	stop()
	if err != nil {
		c.breakConn()
		return nil, err
	}
	return c, nil
}

// open reads the greeting, sends EHLO and upgrades to TLS.
func (c *Client) open(ctx context.Context) error {
	r, err := c.roundTrip(ctx, StageGreeting, c.opts.GreetingTimeout)
	if err != nil {
		return err
	}
	c.greeting = r
	if r.Code != 220 {
		// RFC 5321 section 3.1: a client refused at connection time should
		// still say goodbye; the reply does not matter.
		c.w.WriteString("QUIT\r\n")
		c.w.Flush()
		return &Error{Stage: StageGreeting, Reply: r}
	}
	if err := c.hello(ctx); err != nil {
		return err
	}
	return c.startTLS(ctx)
}

// hello sends EHLO, or HELO when EHLO is refused permanently, and records
// the server's extensions.
func (c *Client) hello(ctx context.Context) error {
	r, err := c.command(ctx, StageHelo, "EHLO "+c.opts.Helo)
	if err != nil {
		return err
	}
	if r.Success() {
		c.setExtensions(parseExtensions(r))
		return nil
	}
	if !r.Permanent() {
		return &Error{Stage: StageHelo, Reply: r}
	}
	r, err = c.command(ctx, StageHelo, "HELO "+c.opts.Helo)
	if err != nil {
		return err
	}
	if !r.Success() {
		return &Error{Stage: StageHelo, Reply: r}
	}
	c.setExtensions(map[string]string{})
	return nil
}

// setExtensions records the extensions of the last EHLO.
func (c *Client) setExtensions(ext map[string]string) {
	c.ext = ext
	c.caps = capabilities{}
	_, c.caps.pipelining = ext["PIPELINING"]
	_, c.caps.eightBitMIME = ext["8BITMIME"]
	_, c.caps.smtpUTF8 = ext["SMTPUTF8"]
	_, c.caps.dsn = ext["DSN"]
	var size string
	size, c.caps.size = ext["SIZE"]
	if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > 0 {
		c.caps.maxSize = n
	}
}

// startTLS upgrades the connection as the TLS mode says.
func (c *Client) startTLS(ctx context.Context) error {
	if c.opts.TLSMode == TLSDisabled {
		return nil
	}
	required := c.opts.TLSMode == TLSRequired
	if _, offered := c.ext["STARTTLS"]; !offered {
		if required {
			return &Error{Stage: StageStartTLS, Err: ErrTLSUnavailable}
		}
		return nil
	}
	r, err := c.command(ctx, StageStartTLS, "STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		if required {
			return &Error{Stage: StageStartTLS, Reply: r, Err: ErrTLSUnavailable}
		}
		return nil
	}
	// Anything after the 220 was sent in clear before the handshake and
	// would be read as if it came over TLS (CVE-2011-0411 in reverse).
	if c.rr.buffered() > 0 {
		return &Error{Stage: StageStartTLS, Err: fmt.Errorf("%w: server sent data after its 220 reply", ErrTLSFailed)}
	}
	cfg := &tls.Config{}
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	}
	cfg.ServerName = c.serverName
	cfg.InsecureSkipVerify = !required
	if required && c.opts.TLSVerify != nil {
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = c.opts.TLSVerify
	}
	if err := c.setDeadline(ctx, c.opts.CommandTimeout); err != nil {
		return c.fail(ctx, StageStartTLS, nil, err)
	}
	tc := tls.Client(c.raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return c.fail(ctx, StageStartTLS, nil, fmt.Errorf("%w: %w", ErrTLSFailed, err))
	}
	state := tc.ConnectionState()
	c.conn, c.tls = tc, &state
	c.rr.reset(tc)
	c.w.Reset(tc)
	// RFC 3207 section 4.2: forget what was learnt in clear and ask again.
	c.setExtensions(map[string]string{})
	return c.hello(ctx)
}

// Greeting returns the server's greeting reply.
func (c *Client) Greeting() *reply.Reply { return c.greeting }

// Extension reports whether the server advertised the EHLO keyword name
// (case-insensitive), and its parameters, e.g. "35882577" for SIZE.
func (c *Client) Extension(name string) (param string, ok bool) {
	param, ok = c.ext[strings.ToUpper(name)]
	return param, ok
}

// TLS returns the state of the TLS connection, and false when the session
// is in clear.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tls, true
}

// LocalAddr returns the local end of the connection.
func (c *Client) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the server's end of the connection.
func (c *Client) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// Broken reports whether the connection failed or was closed; a broken
// client can only be closed.
func (c *Client) Broken() bool { return c.broken }

// Reset sends RSET, abandoning any transaction in progress. A refusal breaks
// the client, since the state of the session is then unknown.
func (c *Client) Reset(ctx context.Context) error {
	if c.broken {
		return &Error{Stage: StageRset, Err: ErrBroken}
	}
	stop := c.watch(ctx)
	defer stop()
	return c.rset(ctx)
}

// rset sends RSET.
func (c *Client) rset(ctx context.Context) error {
	r, err := c.command(ctx, StageRset, "RSET")
	if err != nil {
		return err
	}
	if !r.Success() {
		return c.fail(ctx, StageRset, r, nil)
	}
	return nil
}

// Noop sends NOOP, to check that an idle connection is still alive.
func (c *Client) Noop(ctx context.Context) error {
	if c.broken {
		return &Error{Stage: StageNoop, Err: ErrBroken}
	}
	stop := c.watch(ctx)
	defer stop()
	r, err := c.command(ctx, StageNoop, "NOOP")
	if err != nil {
		return err
	}
	if !r.Success() {
		return &Error{Stage: StageNoop, Reply: r}
	}
	return nil
}

// Quit sends QUIT, waits for the reply and closes the connection. The
// connection is closed whatever the error says.
func (c *Client) Quit(ctx context.Context) error {
	if c.broken {
		return c.Close()
	}
	stop := c.watch(ctx)
	r, err := c.command(ctx, StageQuit, "QUIT")
	stop()
	closeErr := c.Close()
	switch {
	case err != nil:
		return err
	case r.Code != 221:
		return &Error{Stage: StageQuit, Reply: r}
	}
	return closeErr
}

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.broken, c.conn = true, nil
	return err
}

// breakConn marks c broken and closes its connection.
func (c *Client) breakConn() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.broken, c.conn = true, nil
}

// fail breaks c and returns the *Error for a failure at stage. When the
// context ended, its cause replaces the I/O error it provoked.
func (c *Client) fail(ctx context.Context, stage string, r *reply.Reply, err error) error {
	c.breakConn()
	if err != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return &Error{Stage: stage, Reply: r, Err: err}
}

// command writes line and reads its reply.
func (c *Client) command(ctx context.Context, stage, line string) (*reply.Reply, error) {
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	return c.roundTrip(ctx, stage, c.opts.CommandTimeout)
}

// roundTrip flushes the commands written so far and reads one reply, within
// timeout from now, or within the deadline already set when timeout is 0.
// A 421 reply is returned together with the error that breaks c, since the
// server closes the connection after it.
func (c *Client) roundTrip(ctx context.Context, stage string, timeout time.Duration) (*reply.Reply, error) {
	if timeout > 0 {
		if err := c.setDeadline(ctx, timeout); err != nil {
			return nil, c.fail(ctx, stage, nil, err)
		}
	}
	if c.w.Buffered() > 0 {
		if err := c.w.Flush(); err != nil {
			return nil, c.fail(ctx, stage, nil, err)
		}
	}
	r, err := c.rr.read()
	if err != nil {
		return nil, c.fail(ctx, stage, nil, err)
	}
	if r.Code == 421 {
		return r, c.fail(ctx, stage, r, nil)
	}
	return r, nil
}

// setDeadline sets the connection's deadline to timeout from now, or to the
// context's deadline if that is earlier. It returns the context's error when
// the context has ended, since a deadline set after the watch fired would
// hide the cancellation.
func (c *Client) setDeadline(ctx context.Context, timeout time.Duration) error {
	t := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	if err := c.raw.SetDeadline(t); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// watch makes the cancellation of ctx abort the connection's I/O until stop
// is called. Once stop returns, the watch no longer touches the connection.
func (c *Client) watch(ctx context.Context) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	raw := c.raw
	done := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		raw.SetDeadline(aLongTimeAgo)
		close(done)
	})
	return func() {
		if !stopWatch() {
			<-done
		}
	}
}
