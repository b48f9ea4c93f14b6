package ingest

import (
	"time"

	"github.com/emersion/go-message/textproto"
)

// completeHeader adds the Message-ID and Date fields a submission lacks, as
// RFC 6409 sections 8.2 and 8.3 let a submission server do: Gmail and
// others refuse mail without a Message-ID, and RFC 5322 requires a Date.
// The Message-ID is the queue id at the node's hostname, so it is unique
// and leads back to the message. It returns the names of the fields added.
func completeHeader(h *textproto.Header, id, hostname string, now time.Time) []string {
	var added []string
	if !h.Has("Date") {
		h.AddRaw([]byte("Date: " + now.Format(time.RFC1123Z) + "\r\n"))
		added = append(added, "Date")
	}
	if !h.Has("Message-Id") {
		// AddRaw keeps the usual spelling; Add would write "Message-Id".
		h.AddRaw([]byte("Message-ID: <" + id + "@" + hostname + ">\r\n"))
		added = append(added, "Message-ID")
	}
	return added
}
