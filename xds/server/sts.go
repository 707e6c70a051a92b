package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenExchangePath is where the server answers OAuth 2.0 token exchange
// (RFC 8693) requests, next to xDS on the same TLS port. Stock Envoy's
// Google gRPC client presents a rotating file only through STS call
// credentials: it trades the pod's projected ServiceAccount token here, then
// sends what it gets back as "authorization: Bearer" on its xDS streams.
const TokenExchangePath = "/v1/token"

// STS request and response values (RFC 8693 section 2 and 3).
const (
	grantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
)

// Lifetimes the exchange reports (expires_in) when the token's own expiry
// cannot be read, and at most.
const (
	defaultExchangeLifetime = 10 * time.Minute
	maxExchangeLifetime     = time.Hour
	maxExchangeBody         = 64 << 10
)

// exchangeRequest is the part of a token exchange request the server reads.
type exchangeRequest struct {
	GrantType        string `json:"grant_type"`
	SubjectToken     string `json:"subject_token"`
	SubjectTokenType string `json:"subject_token_type"`
}

// exchangeResponse is a successful token exchange (RFC 8693 section 2.2.1).
type exchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
}

// exchangeError is an unsuccessful one (RFC 6749 section 5.2).
type exchangeError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// tokenExchange answers token exchanges. The subject token must be a
// ServiceAccount token that the Authenticator accepts (audience capstan,
// bound to a pod); the issued access token is that same token. The
// exchange adds no privilege: it is the way a stock Envoy presents its
// rotating token, and a token refused here would be refused on the stream
// too. Failures are logged and counted like refused streams, never with the
// token.
func (s *Server) tokenExchange(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != TokenExchangePath || s.auth == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, exchangeError{Error: "invalid_request", ErrorDescription: "POST only"})
		return
	}
	req, err := readExchangeRequest(r)
	if err != nil {
		s.log.Info("bad token exchange request", "error", err.Error(), "peer", r.RemoteAddr)
		writeJSON(w, http.StatusBadRequest, exchangeError{Error: "invalid_request", ErrorDescription: err.Error()})
		return
	}
	caller, _, err := s.auth.authenticate(r.Context(), req.SubjectToken, peerHost(r.RemoteAddr))
	if err != nil {
		ref := authRefusal(err, req.SubjectToken)
		code := http.StatusUnauthorized
		switch ref.reason {
		case ReasonReviewThrottled:
			code = http.StatusTooManyRequests
		case ReasonUnavailable:
			code = http.StatusServiceUnavailable
		}
		s.refuseExchange(r, ref, nil)
		writeJSON(w, code, exchangeError{Error: "invalid_grant", ErrorDescription: "token exchange refused: " + ref.reason})
		return
	}
	if caller.PodName == "" || caller.PodUID == "" {
		ref := &refusal{reason: ReasonUnboundToken, detail: "the token is not bound to a pod"}
		s.refuseExchange(r, ref, &caller)
		writeJSON(w, http.StatusUnauthorized, exchangeError{Error: "invalid_grant", ErrorDescription: "token exchange refused: " + ref.reason})
		return
	}
	tokenExchanges.Inc()
	s.log.V(1).Info("token exchanged", "namespace", caller.Namespace, "serviceAccount", caller.ServiceAccount, "pod", caller.PodName, "peer", r.RemoteAddr)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, exchangeResponse{
		AccessToken:     req.SubjectToken,
		IssuedTokenType: tokenTypeAccessToken,
		TokenType:       "Bearer",
		ExpiresIn:       int64(exchangeLifetime(req.SubjectToken, time.Now()).Seconds()),
	})
}

// readExchangeRequest parses the body, JSON (gRPC Go's STS credentials) or
// a form (RFC 8693, gRPC core's STS credentials used by Envoy), and checks
// the fields the exchange needs.
func readExchangeRequest(r *http.Request) (exchangeRequest, error) {
	var req exchangeRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxExchangeBody+1))
	if err != nil {
		return req, errors.New("reading the body failed")
	}
	if len(body) > maxExchangeBody {
		return req, errors.New("body too large")
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "application/json":
		if err := json.Unmarshal(body, &req); err != nil {
			return req, errors.New("body is not valid JSON")
		}
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return req, errors.New("body is not a valid form")
		}
		req = exchangeRequest{GrantType: form.Get("grant_type"), SubjectToken: form.Get("subject_token"),
			SubjectTokenType: form.Get("subject_token_type")}
	default:
		return req, errors.New("content type must be application/json or application/x-www-form-urlencoded")
	}
	switch {
	case req.GrantType != grantTypeTokenExchange:
		return req, errors.New("grant_type must be " + grantTypeTokenExchange)
	case req.SubjectTokenType != tokenTypeJWT:
		return req, errors.New("subject_token_type must be " + tokenTypeJWT)
	case strings.TrimSpace(req.SubjectToken) == "":
		return req, errors.New("subject_token is empty")
	case len(req.SubjectToken) > maxAuthorizationLength:
		return req, errors.New("subject_token is too long")
	}
	req.SubjectToken = strings.TrimSpace(req.SubjectToken)
	return req, nil
}

// exchangeLifetime is how long the issued token may be used: until the
// token's own expiry (its "exp" claim, read only after the Authenticator
// accepted the token), at most maxExchangeLifetime, defaultExchangeLifetime
// when there is no readable expiry, and never negative.
func exchangeLifetime(token string, now time.Time) time.Duration {
	exp, ok := tokenExpiry(token)
	if !ok {
		return defaultExchangeLifetime
	}
	return max(0, min(exp.Sub(now), maxExchangeLifetime))
}

// tokenExpiry reads a JWT's "exp" claim without verifying anything: call
// it only for a token the Authenticator accepted. ok is false when the
// token has no readable expiry.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}

// refuseExchange logs and counts a refused token exchange.
func (s *Server) refuseExchange(r *http.Request, ref *refusal, caller *Caller) {
	s.observer.StreamRefused(ref.reason)
	ok, suppressed := s.logLimit.allowN("refuse/" + peerHost(r.RemoteAddr))
	if !ok {
		return
	}
	kv := []any{"reason", ref.reason, "detail", truncate(ref.detail), "peer", r.RemoteAddr, "suppressed", suppressed}
	if caller != nil {
		kv = append(kv, "namespace", caller.Namespace, "serviceAccount", caller.ServiceAccount)
	}
	s.log.Info("refused token exchange", kv...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
