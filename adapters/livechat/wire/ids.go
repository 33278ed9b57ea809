package wire

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"chatgate/core/model"
)

// TimeLayout is v3.1+'s created_at format: RFC 3339, microseconds, UTC.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Time formats t as v3 does; the zero time renders as "".
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// EventID is an event's v3 id: "<thread_id>_<seq>".
func EventID(conv model.ConvID, seq uint64) string {
	return string(conv) + "_" + strconv.FormatUint(seq, 10)
}

// ParseEventID splits a v3 event id into thread and sequence.
func ParseEventID(id string) (model.ConvID, uint64, bool) {
	i := strings.LastIndexByte(id, '_')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return model.ConvID(id[:i]), seq, true
}

// GroupID maps a core department to a LiveChat group id (an integer; group
// 0 means "all agents"). The default department is 0; numeric department
// ids are used as they are; other ids get a stable 31-bit hash until
// department configuration carries explicit LiveChat group ids.
func GroupID(d model.DeptID) int {
	if d == "" {
		return 0
	}
	if n, err := strconv.ParseInt(string(d), 10, 32); err == nil && n >= 0 {
		return int(n)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(d))
	n := int(h.Sum32() & 0x7fffffff)
	if n == 0 {
		n = 1
	}
	return n
}
