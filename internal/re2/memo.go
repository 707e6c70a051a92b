package re2

import "sync"

// memoCap bounds the memo: at most memoCap patterns of at most
// MaxPatternLength bytes each (4 MiB). A full memo starts again empty.
const memoCap = 4096

type memoTable struct {
	mu sync.Mutex
	m  map[string]error
}

// memo holds the result of Check per pattern. Results depend on the pattern
// alone, so sharing them across translations and proxies keeps every caller
// a pure function.
var memo = &memoTable{m: map[string]error{}}

func (t *memoTable) get(pattern string) (error, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	err, ok := t.m[pattern]
	return err, ok
}

func (t *memoTable) put(pattern string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= memoCap {
		clear(t.m)
	}
	t.m[pattern] = err
}
