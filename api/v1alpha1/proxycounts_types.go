package v1alpha1

import "strconv"

// ProxyCounts says how many of the proxies whose config carries an object
// have acknowledged (ACKed) a config containing its current generation.
type ProxyCounts struct {
	// Programmed is the number of proxies that ACKed a config containing the
	// object's current generation.
	Programmed int32 `json:"programmed"`
	// Total is the number of proxies whose config carries the object.
	Total int32 `json:"total"`
	// Summary is "<programmed>/<total>", for the PROXIES printer column.
	// +optional
	Summary string `json:"summary,omitempty"`
}

// NewProxyCounts returns the counts with their summary.
func NewProxyCounts(programmed, total int32) *ProxyCounts {
	return &ProxyCounts{Programmed: programmed, Total: total,
		Summary: strconv.Itoa(int(programmed)) + "/" + strconv.Itoa(int(total))}
}
