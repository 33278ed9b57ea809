package desk

import (
	"sort"

	"chatgate/core/model"
)

// Departments lists the configured departments, ordered by id.
func (d *Desk) Departments() []model.Department {
	out := make([]model.Department, 0, len(d.departs))
	for _, dp := range d.departs {
		out = append(out, dp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
