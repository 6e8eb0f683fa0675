package fleet

// SeqWindow is how far below the highest sequence number seen a tracker
// still tells a late message from a duplicate.
const SeqWindow = 256

// Outcome is what one received sequence number turned out to be.
type Outcome uint8

// Outcomes of SeqTracker.Observe.
const (
	// SeqNew: first time seen, in order (higher than any before).
	SeqNew Outcome = iota
	// SeqLate: first time seen, but after a higher one (reordered).
	SeqLate
	// SeqDuplicate: seen before.
	SeqDuplicate
	// SeqStale: more than SeqWindow below the highest seen; counted as new
	// and reordered, since the window no longer knows whether it came before.
	SeqStale
	// SeqInvalid: 0, which no device sends.
	SeqInvalid
)

// SeqTracker accounts one device's sequence numbers in constant memory: the
// highest seen and a bitmap of the SeqWindow numbers below it. It is not safe
// for concurrent use (the observer's router goroutine owns it).
type SeqTracker struct {
	hi     uint64
	window [SeqWindow / 64]uint64 // bit k set ⇔ hi-k has been seen
	// Unique counts distinct sequence numbers (stale ones included).
	Unique int64
	// Duplicates and Reorders count SeqDuplicate and SeqLate+SeqStale.
	Duplicates int64
	Reorders   int64
}

// Observe records seq and says what it was.
func (t *SeqTracker) Observe(seq uint64) Outcome {
	switch {
	case seq == 0:
		return SeqInvalid
	case seq > t.hi:
		t.shift(seq - t.hi)
		t.hi = seq
		t.window[0] |= 1
		t.Unique++
		return SeqNew
	}
	k := t.hi - seq
	if k >= SeqWindow {
		t.Unique++
		t.Reorders++
		return SeqStale
	}
	w, b := k/64, k%64
	if t.window[w]&(1<<b) != 0 {
		t.Duplicates++
		return SeqDuplicate
	}
	t.window[w] |= 1 << b
	t.Unique++
	t.Reorders++
	return SeqLate
}

// Highest is the highest sequence number seen.
func (t *SeqTracker) Highest() uint64 { return t.hi }

// shift moves the window up by n: bit k becomes bit k+n.
func (t *SeqTracker) shift(n uint64) {
	if n >= SeqWindow {
		t.window = [SeqWindow / 64]uint64{}
		return
	}
	words, bits := int(n/64), n%64
	for i := len(t.window) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = t.window[j] << bits
			if bits > 0 && j-1 >= 0 {
				v |= t.window[j-1] >> (64 - bits)
			}
		}
		t.window[i] = v
	}
}
