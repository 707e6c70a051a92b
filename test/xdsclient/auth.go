package xdsclient

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithBearerToken sends "authorization: Bearer <token>" on every stream, as
// a proxy presenting its ServiceAccount token does. It is allowed over
// insecure transport, for tests; TLS is a separate dial option.
func WithBearerToken(token string) grpc.DialOption {
	return grpc.WithPerRPCCredentials(bearerToken(token))
}

type bearerToken string

var _ credentials.PerRPCCredentials = bearerToken("")

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }

// Err returns the error that ended the stream, or nil while it is open.
func (b *base) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// WaitForError waits for the stream to end and returns its error, failing
// the test if it is still open at the deadline.
func (b *base) WaitForError(t testing.TB, timeout time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := b.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("xDS stream still open after %s", timeout)
		}
		<-tick.C
	}
}
