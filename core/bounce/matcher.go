package bounce

// matcher finds which of a fixed set of fragments occur in a text, in one
// pass over the text (Aho-Corasick). Matching is case-insensitive for ASCII
// letters; any white space in the text matches a space in a fragment.
//
// The automaton is a full transition table over byte classes: only the
// bytes that occur in some fragment get a class of their own, so the table
// stays small (states × classes) while a step is one lookup.
type matcher struct {
	class    [256]uint16 // byte → class; 0 for bytes in no fragment
	nclass   int
	delta    []int32 // state*nclass + class → next state
	out      []int32 // state → first fragment id ending here, or -1
	outNext  []int32 // state → next state (via failure links) that has output, or -1
	outExtra [][]int32
	nfrag    int
}

// newMatcher builds a matcher for fragments, which must be non-empty and
// already lower-case; fragment i is reported as id i.
func newMatcher(fragments []string) *matcher {
	m := &matcher{nfrag: len(fragments)}
	// Byte classes.
	next := uint16(1)
	for _, f := range fragments {
		for i := 0; i < len(f); i++ {
			c := f[i]
			if m.class[c] == 0 {
				m.class[c] = next
				next++
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		m.class[c] = m.class[c+'a'-'A']
	}
	for _, c := range []byte{'\t', '\n', '\r', '\v', '\f'} {
		m.class[c] = m.class[' ']
	}
	m.nclass = int(next)

	// Trie: at most one state per fragment byte, plus the root.
	states := 1
	for _, f := range fragments {
		states += len(f)
	}
	goTo := make([]int32, 0, states*m.nclass)
	m.out = make([]int32, 0, states)
	m.outExtra = make([][]int32, 0, states)
	newState := func() int32 {
		for i := 0; i < m.nclass; i++ {
			goTo = append(goTo, -1)
		}
		m.out = append(m.out, -1)
		m.outExtra = append(m.outExtra, nil)
		return int32(len(m.out) - 1)
	}
	newState()
	for id, f := range fragments {
		s := int32(0)
		for i := 0; i < len(f); i++ {
			c := int(m.class[f[i]])
			if goTo[int(s)*m.nclass+c] < 0 {
				n := newState()
				goTo[int(s)*m.nclass+c] = n
			}
			s = goTo[int(s)*m.nclass+c]
		}
		if m.out[s] < 0 {
			m.out[s] = int32(id)
		} else {
			m.outExtra[s] = append(m.outExtra[s], int32(id))
		}
	}

	// Failure links by breadth-first search, turning the trie into a
	// complete transition table.
	n := len(m.out)
	fail := make([]int32, n)
	m.outNext = make([]int32, n)
	for i := range m.outNext {
		m.outNext[i] = -1
	}
	m.delta = goTo
	queue := make([]int32, 0, n)
	for c := 0; c < m.nclass; c++ {
		if t := m.delta[c]; t > 0 {
			fail[t] = 0
			queue = append(queue, t)
		} else {
			m.delta[c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s]
		if m.out[f] >= 0 {
			m.outNext[s] = f
		} else {
			m.outNext[s] = m.outNext[f]
		}
		for c := 0; c < m.nclass; c++ {
			t := m.delta[int(s)*m.nclass+c]
			if t > 0 {
				fail[t] = m.delta[int(f)*m.nclass+c]
				queue = append(queue, t)
			} else {
				m.delta[int(s)*m.nclass+c] = m.delta[int(f)*m.nclass+c]
			}
		}
	}
	return m
}

// scan marks in found (a bit set of at least nfrag bits) every fragment
// that occurs in text.
func (m *matcher) scan(text string, found []uint64) {
	if m.nfrag == 0 {
		return
	}
	s := int32(0)
	nc := m.nclass
	for i := 0; i < len(text); i++ {
		s = m.delta[int(s)*nc+int(m.class[text[i]])]
		for o := s; o >= 0; o = m.outNext[o] {
			if id := m.out[o]; id >= 0 {
				found[id>>6] |= 1 << (uint(id) & 63)
				for _, x := range m.outExtra[o] {
					found[x>>6] |= 1 << (uint(x) & 63)
				}
			}
		}
	}
}

// has reports whether fragment id is marked in found.
func has(found []uint64, id int) bool { return found[id>>6]&(1<<(uint(id)&63)) != 0 }
