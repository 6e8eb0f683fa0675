// Package levenshtein is the edit distance behind "did you mean": the CLI's
// unknown-flag hint and the scenario decoder's unknown-key and bad-value
// hints both measure with it, each with its own idea of "close enough".
package levenshtein

// Distance is the Levenshtein distance between a and b in bytes: the
// fewest single-byte insertions, deletions and substitutions that turn a
// into b. It costs len(a)·len(b) steps and two rows of len(b)+1 ints, so
// callers bound what they pass (both pass names and keys, not files).
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
