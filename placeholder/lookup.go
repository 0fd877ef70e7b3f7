package placeholder

import "strings"

// Lookup follows path into v, a value decoded from JSON into map[string]any
// and []any. The path is a list of keys separated by dots. A key may be
// followed by array indexes in brackets, so "items.1.sku" and
// "items[1].sku" are the same, and "[0].id" starts at an array. A number
// indexes an array and is a key in an object. The empty path returns v.
//
// Lookup reports false when a step is missing: an unknown key, an index
// out of range, a step into a string or number, or an empty key such as in
// "a..b". Keys that contain a dot or brackets cannot be reached.
func Lookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for part := range strings.SplitSeq(path, ".") {
		key, indexes := splitIndexes(part)
		if key == "" && indexes == "" {
			return nil, false
		}
		if key != "" {
			var ok bool
			if v, ok = step(v, key); !ok {
				return nil, false
			}
		}
		for indexes != "" {
			end := strings.IndexByte(indexes, ']')
			var ok bool
			if v, ok = step(v, indexes[1:end]); !ok {
				return nil, false
			}
			indexes = indexes[end+1:]
		}
	}
	return v, true
}

// splitIndexes splits a path part such as "items[1][0]" into its key
// "items" and its trailing indexes "[1][0]". A part whose brackets do not
// hold digits only, such as "a[b]", is a key without indexes.
func splitIndexes(part string) (key, indexes string) {
	end := len(part)
	for end > 0 && part[end-1] == ']' {
		open := strings.LastIndexByte(part[:end], '[')
		if open < 0 || open+1 == end-1 || !isDigits(part[open+1:end-1]) {
			break
		}
		end = open
	}
	return part[:end], part[end:]
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// step moves from v to its element named key: a member of an object or,
// when key is a decimal number, an element of an array.
func step(v any, key string) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		elem, ok := v[key]
		return elem, ok
	case []any:
		i, ok := parseIndex(key)
		if !ok || i >= len(v) {
			return nil, false
		}
		return v[i], true
	}
	return nil, false
}

// parseIndex parses a non-negative decimal array index. It rejects signs,
// spaces and values that overflow an int.
func parseIndex(s string) (int, bool) {
	if s == "" || !isDigits(s) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		d := int(s[i] - '0')
		if n > (maxInt-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

const maxInt = int(^uint(0) >> 1)
