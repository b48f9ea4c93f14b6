package ingest

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/reply"
)

// Replies of a DATA transfer that did not finish. They say nothing of the
// connection (no addresses, no system error text) and are temporary: the
// client may retry, nothing was accepted.
var (
	errDataTimeout = smtpErr(reply.New(451, "4.4.2", "Timeout while receiving the message; nothing was accepted, try again later"))
	errDataBroken  = smtpErr(reply.New(451, "4.4.2", "Connection error while receiving the message; nothing was accepted, try again later"))
)

// limitDataReads bounds the DATA transfer about to be read twice: each
// read must bring something within the idle timeout (a stalled client is
// cut off), and the whole transfer must end within the DATA timeout (a
// trickling client is cut off too).
func (se *session) limitDataReads() {
	if se.sconn != nil {
		se.sconn.LimitReads(se.s.opts.IdleTimeout, time.Now().Add(se.s.opts.DataTimeout))
	}
}

// dataReadError turns a failed DATA read into a neutral temporary reply,
// and ends the session after it: the rest of the transfer would otherwise
// be read as commands.
func (se *session) dataReadError(err error) error {
	se.closeAfterReply()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return se.reject("data_timeout", errDataTimeout)
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		// Permanent: the same message would be refused again.
		return se.reject("line_too_long", smtpErr(reply.New(554, "5.6.0",
			fmt.Sprintf("Message has a line longer than %d octets", se.s.opts.MaxLineLength))))
	}
	se.s.log.Info("DATA transfer broken", "client", se.ip.String(), "err", err)
	return se.reject("data_broken", errDataBroken)
}
