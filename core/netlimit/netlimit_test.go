package netlimit

import (
	"bufio"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestListenerRefusesBeyondMax(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	l := &Listener{Listener: ln, Max: 2, Refusal: "421 busy\r\n", OnRefuse: func() { refused.Add(1) }}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	first, second := <-accepted, <-accepted
	third := dial()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(third).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "421") {
		t.Fatalf("third connection read %q, %v; want the refusal", line, err)
	}
	if refused.Load() != 1 || l.Active() != 2 {
		t.Errorf("refused %d, active %d; want 1 and 2", refused.Load(), l.Active())
	}
	first.Close()
	first.Close() // a second Close gives back nothing more
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection within the limit again was not accepted")
	}
	second.Close()
	if l.Active() != 0 {
		t.Errorf("active %d after every admitted connection closed", l.Active())
	}
}
