package translate

import (
	meshv1alpha1 "github.com/capstanmesh/capstan/api/v1alpha1"
	"github.com/capstanmesh/capstan/api/validation"
	"github.com/capstanmesh/capstan/xds/ir"
)

// telemetry is the Mesh's access log and tracing settings for the
// sidecars. A collector address that admission would refuse is dropped
// (spans are then not exported), as the status reports it.
func telemetry(spec *meshv1alpha1.Telemetry) ir.Telemetry {
	out := ir.Telemetry{SamplingPercent: min(max(spec.Tracing.SamplingPercent, 0), 100)}
	if spec.AccessLog.Enabled {
		out.AccessLog = ir.AccessLogText
		if spec.AccessLog.Format == meshv1alpha1.AccessLogJSON {
			out.AccessLog = ir.AccessLogJSON
		}
	}
	if len(validation.TraceCollector(spec.Tracing.Collector)) == 0 {
		out.Collector = spec.Tracing.Collector
	}
	return out
}
