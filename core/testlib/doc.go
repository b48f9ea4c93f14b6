// Package testlib holds what the tests of several packages share: waiting
// for a condition, and certificates for TLS over loopback. It is imported
// only from _test.go files.
//
// Waits poll a condition rather than sleep for a fixed time, so a test ends
// as soon as what it waits for has happened and fails with a message naming
// it when it never does.
package testlib
