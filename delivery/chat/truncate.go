package chat

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// ellipsis ends a text that truncate has cut.
const ellipsis = "…"

// truncate returns text unchanged when measure(text) is at most limit.
// Otherwise it returns the longest prefix, cut between runes, that still
// fits with ellipsis appended, and appends ellipsis. measure must grow with
// every rune added to its argument.
//
// The cut then moves back over combining marks, variation selectors, emoji
// modifiers and tags, zero width joiners and half of a flag, so that no
// character loses a part that it is drawn with. It does not know every
// grapheme cluster rule of Unicode (UAX #29): Hangul syllables written as
// separate jamo, for one, may still be split.
func truncate(text string, limit int, measure func(string) int) string {
	if measure(text) <= limit {
		return text
	}

	// starts[k] is the byte offset at which the k-th rune starts, and
	// starts[len(starts)-1] is len(text), so text[:starts[k]] holds k runes.
	starts := make([]int, 0, len(text)+1)
	for i := range text {
		starts = append(starts, i)
	}
	starts = append(starts, len(text))

	// fits(k) holds for small k and fails from some k on. Search finds the
	// first k that fails, which is at most the full text.
	tooLong := sort.Search(len(starts), func(k int) bool {
		return measure(text[:starts[k]]+ellipsis) > limit
	})
	keep := tooLong - 1
	if keep < 0 {
		return ""
	}

	for keep > 0 && splitsCharacter(text[:starts[keep]], text[starts[keep]:]) {
		keep--
	}
	return text[:starts[keep]] + ellipsis
}

// splitsCharacter reports whether cutting between kept and dropped would
// separate runes that are drawn as one character.
func splitsCharacter(kept, dropped string) bool {
	last, _ := utf8.DecodeLastRuneInString(kept)
	next, _ := utf8.DecodeRuneInString(dropped)
	switch {
	case continuesCharacter(next):
		return true
	case last == zeroWidthJoiner:
		return true
	case isRegionalIndicator(last) && isRegionalIndicator(next):
		return regionalIndicatorsAtEnd(kept)%2 == 1
	default:
		return false
	}
}

const zeroWidthJoiner = '\u200d'

// continuesCharacter reports whether r belongs to the character before it.
func continuesCharacter(r rune) bool {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc):
		return true
	case r == zeroWidthJoiner:
		return true
	case 0xFE00 <= r && r <= 0xFE0F, 0xE0100 <= r && r <= 0xE01EF: // variation selectors
		return true
	case 0x1F3FB <= r && r <= 0x1F3FF: // emoji skin tone modifiers
		return true
	case 0xE0020 <= r && r <= 0xE007F: // tags of emoji flag sequences
		return true
	default:
		return false
	}
}

// isRegionalIndicator reports whether r is one of the letters that make a
// flag emoji in pairs.
func isRegionalIndicator(r rune) bool {
	return 0x1F1E6 <= r && r <= 0x1F1FF
}

// regionalIndicatorsAtEnd counts the regional indicators that end s.
func regionalIndicatorsAtEnd(s string) int {
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if !isRegionalIndicator(r) {
			break
		}
		n++
		s = s[:len(s)-size]
	}
	return n
}
