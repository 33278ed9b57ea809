// Package jsonstr appends Go strings as JSON strings, byte for byte as
// encoding/json writes them, for the append-style encoders of the hot
// paths (LiveChat RTM frames, Rocket.Chat REST answers and DDP frames):
// they skip encoding/json's reflection but must not change what clients
// receive, so they share this one escaper instead of three copies.
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Append appends s to dst as a JSON string, as encoding/json does: '"'
// and '\\' escaped, \b \f \n \r \t short, other control characters as
// \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped (encoding/json
// keeps that even without HTML escaping); with html, also <, > and & as
// \u003c, \u003e, \u0026 (json.Marshal's default; JSON.stringify and
// json.Encoder.SetEscapeHTML(false) leave them).
func Append(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!html || (b != '<' && b != '>' && b != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
