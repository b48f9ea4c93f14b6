package spool

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// idAlphabet is base32 in ASCII order, so IDs sort like their creation time.
const idAlphabet = "0123456789abcdefghijklmnopqrstuv"

var (
	idCounter atomic.Uint32
	idNode    = func() uint32 {
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
		return binary.BigEndian.Uint32(b[:])
	}()
)

// NewID returns a new message ID: 20 characters, unique across processes
// with overwhelming probability, and ordered by creation time within one.
// It encodes 64 bits of nanosecond time, 20 bits of per-process randomness
// and a 16-bit counter.
func NewID() string {
	lo := uint64(idNode&0xfffff)<<16 | uint64(idCounter.Add(1)&0xffff)
	var out [20]byte
	copy(out[:], idTime(time.Now()))
	// 7 characters carry 35 bits: node (20 bits) and counter (16 bits),
	// the top bit of the node dropped.
	for i := 19; i >= 13; i-- {
		out[i] = idAlphabet[lo&31]
		lo >>= 5
	}
	return string(out[:])
}

// idTime returns the first 13 characters of the IDs made at t: they carry
// its 64-bit nanosecond time, so IDs made before t sort before it.
func idTime(t time.Time) string {
	hi := uint64(t.UnixNano())
	var out [13]byte
	for i := 12; i >= 0; i-- {
		out[i] = idAlphabet[hi&31]
		hi >>= 5
	}
	return string(out[:])
}

// IDBefore returns the smallest ID made at t: every ID made before t sorts
// before it, so it bounds a Selector to messages received before t.
func IDBefore(t time.Time) string {
	return idTime(t)
}
