package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/capstanmesh/capstan/xds/debugapi"
)

// debugFlags are the flags of the commands that read the debug endpoint.
type debugFlags struct {
	// token, when set, is presented to the debug endpoint instead of the
	// kubeconfig's bearer token.
	token string
}

func (f *debugFlags) bind(flags interface {
	StringVar(p *string, name, value, usage string)
}) {
	flags.StringVar(&f.token, "token", "",
		"bearer token for the operator's debug endpoint (default: the kubeconfig's; needed when the kubeconfig authenticates with a client certificate)")
}

// debugGet reads path of the operator's debug endpoint through the API
// server's service proxy
// (/api/v1/namespaces/<ns>/services/https:capstan-debug:15014/proxy/<path>)
// and decodes the answer into out. The API server checks that the user may
// get services/proxy there; the endpoint checks the user again from the
// token capstanctl repeats in debugapi.TokenHeader (the service proxy drops
// the Authorization header).
func (o *Options) debugGet(ctx context.Context, flags debugFlags, path string, query url.Values, out any) error {
	c, err := o.connect()
	if err != nil {
		return err
	}
	cfg := rest.CopyConfig(c.config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return tokenCopier{rt: rt, token: flags.token} })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	params := map[string]string{}
	for k := range query {
		params[k] = query.Get(k)
	}
	var body []byte
	for attempt := 1; ; attempt++ {
		body, err = cs.CoreV1().Services(o.OperatorNamespace).
			ProxyGet("https", debugapi.ServiceName, strconv.Itoa(debugapi.Port), path, params).DoRaw(ctx)
		if err == nil || attempt == maxDebugAttempts || !unreachable(err, body) {
			break
		}
	}
	if err != nil {
		return o.debugError(err, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding the debug endpoint's answer: %w", err)
	}
	return nil
}

// maxDebugAttempts bounds the requests when the API server cannot reach
// the endpoint: only the leader replica serves xDS and the debug endpoint,
// and the service proxy picks one ready replica at random per request.
const maxDebugAttempts = 5

// unreachable reports whether the API server could not connect to the
// replica it picked (a 503 whose body says so; client-go's error is generic).
func unreachable(err error, body []byte) bool {
	var st apierrors.APIStatus
	return errors.As(err, &st) && st.Status().Code == http.StatusServiceUnavailable &&
		bytes.Contains(body, []byte("error trying to reach service"))
}

// debugError says who refused: the debug endpoint (its JSON message) or
// the API server (a Status).
func (o *Options) debugError(err error, body []byte) error {
	where := fmt.Sprintf("service %s/%s port %d", o.OperatorNamespace, debugapi.ServiceName, debugapi.Port)
	down := unreachable(err, body)
	var msg struct {
		Message string `json:"message"`
	}
	if len(body) > 0 && json.Unmarshal(body, &msg) == nil && msg.Message != "" {
		err = errors.New(msg.Message)
	}
	if down {
		return fmt.Errorf("the operator's debug endpoint (%s) is not reachable after %d attempts: %w", where, maxDebugAttempts, err)
	}
	return fmt.Errorf("the operator's debug endpoint (%s): %w", where, err)
}

// tokenCopier repeats the request's bearer token (or its own) in
// debugapi.TokenHeader. It runs inside client-go's authentication wrappers,
// which have set Authorization by then.
type tokenCopier struct {
	rt    http.RoundTripper
	token string
}

// RoundTrip implements http.RoundTripper.
func (c tokenCopier) RoundTrip(r *http.Request) (*http.Response, error) {
	token := c.token
	if token == "" {
		token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token != "" {
		r = r.Clone(r.Context())
		r.Header.Set(debugapi.TokenHeader, token)
	}
	return c.rt.RoundTrip(r)
}
